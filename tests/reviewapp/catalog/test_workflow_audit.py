"""Workflow settings changed outside the version services are audited."""

import pytest
from django.urls import reverse

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.catalog.models import Workflow
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def changed_rows():
    return list(AuditEvent.objects.filter(action=actions.WORKFLOW_CHANGED).order_by("id"))


def test_required_approvals_edited_in_the_admin_is_audited(client, workflows):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    workflow = workflows["color_swatch"]
    versions = list(workflow.versions.all())
    client.force_login(root)

    response = client.post(
        reverse("admin:catalog_workflow_change", args=[workflow.pk]),
        {
            "title": workflow.title,
            "description": workflow.description,
            "pool": workflow.pool,
            "required_approvals": 2,
            "queue_timeout_s": workflow.queue_timeout_s,
            "run_timeout_s": 120,
            "campaign_breaker_min_decided": workflow.campaign_breaker_min_decided,
            "campaign_breaker_max_reject_rate": workflow.campaign_breaker_max_reject_rate,
            "versions-TOTAL_FORMS": len(versions),
            "versions-INITIAL_FORMS": len(versions),
            **{f"versions-{i}-id": v.pk for i, v in enumerate(versions)},
            **{f"versions-{i}-workflow": workflow.pk for i in range(len(versions))},
        },
    )

    assert response.status_code == 302
    (row,) = changed_rows()
    assert row.actor_name == "root"
    assert row.workflow_slug == "color_swatch"
    assert row.changes == {"required_approvals": [1, 2], "run_timeout_s": [900, 120]}


def test_a_change_from_a_shell_is_audited_as_the_system(workflows):
    workflow = Workflow.objects.get(slug="color_swatch")
    workflow.pool = "gpu"
    workflow.save()
    workflow.save()  # nothing changed: nothing recorded

    (row,) = changed_rows()
    assert (row.actor_name, row.changes) == ("system", {"pool": ["default", "gpu"]})


def test_the_admin_cannot_add_a_workflow_without_a_version(client):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    client.force_login(root)

    assert client.get(reverse("admin:catalog_workflow_add")).status_code == 403
