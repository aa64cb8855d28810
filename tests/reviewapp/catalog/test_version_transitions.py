"""WorkflowVersion.publish() and retire() refuse the moves ALLOWED does not list; the
services publish and retire through them, keep one published version per workflow and
record the same audit events as before."""

import copy

import pytest

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.catalog import services
from reviewapp.catalog.models import IllegalVersionTransition, WorkflowVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(workflows, wfadmin):
    """color_swatch v1 (published, as loaded) and v2 (a draft)."""
    v1 = workflows["color_swatch"].published_version
    graph, schema = copy.deepcopy(v1.graph), copy.deepcopy(v1.schema)
    graph["2"]["inputs"]["sigma"] = 2.0
    v2, _ = services.add_version("color_swatch", graph, schema, actor=wfadmin, publish=False)
    return v1, v2


def statuses(*versions):
    return [WorkflowVersion.objects.get(pk=v.pk).status for v in versions]


def events(action):
    """The events of the test's workflow admin (loading the workflows records others)."""
    rows = AuditEvent.objects.filter(action=action, actor_name="wanda").order_by("id")
    return [(e.actor_name, e.target_id, e.changes) for e in rows]


def test_publishing_a_published_version_is_refused(versions):
    v1, _ = versions

    with pytest.raises(IllegalVersionTransition, match=r"color_swatch v1: published -> published"):
        v1.publish()
    assert v1.status == "published"


def test_retiring_a_retired_version_is_refused(versions):
    v1, _ = versions
    v1.retire()

    with pytest.raises(IllegalVersionTransition, match=r"color_swatch v1: retired -> retired"):
        v1.retire()


def test_nothing_goes_back_to_draft():
    assert all(
        WorkflowVersion.Status.DRAFT not in moves for moves in WorkflowVersion.ALLOWED.values()
    )


def test_the_allowed_moves_are_the_ones_the_services_always_made(versions):
    v1, v2 = versions
    assert v2.publish() == "draft" and v2.published_at is not None
    assert v2.retire() == "published"
    assert v2.publish() == "retired"  # a roll back
    assert v1.retire() == "published"
    draft = WorkflowVersion(workflow=v1.workflow, number=9, status="draft")
    assert draft.retire() == "draft"  # set aside without ever being published


def test_publish_retires_the_one_before_and_records_one_event(versions, wfadmin):
    v1, v2 = versions

    services.publish_version(v2, actor=wfadmin)

    assert statuses(v1, v2) == ["retired", "published"]
    assert events(actions.WORKFLOW_VERSION_PUBLISHED) == [
        ("wanda", str(v2.pk), {"number": 2, "replaces": 1})
    ]
    assert events(actions.WORKFLOW_VERSION_RETIRED) == []


def test_rolling_back_and_retiring_record_what_they_did(versions, wfadmin):
    v1, v2 = versions
    services.publish_version(v2, actor=wfadmin)

    services.publish_version(v1, actor=wfadmin)  # roll back
    services.retire_version(v1, actor=wfadmin)
    services.retire_version(v1, actor=wfadmin)  # already retired: nothing to do

    assert statuses(v1, v2) == ["retired", "retired"]
    assert events(actions.WORKFLOW_VERSION_PUBLISHED) == [
        ("wanda", str(v2.pk), {"number": 2, "replaces": 1}),
        ("wanda", str(v1.pk), {"number": 1, "replaces": 2}),
    ]
    assert events(actions.WORKFLOW_VERSION_RETIRED) == [
        ("wanda", str(v1.pk), {"number": 1, "status": ["published", "retired"]})
    ]


def test_publishing_the_published_version_through_the_service_changes_nothing(versions, wfadmin):
    v1, _ = versions
    before = AuditEvent.objects.count()

    services.publish_version(v1, actor=wfadmin)

    assert statuses(v1) == ["published"]
    assert AuditEvent.objects.count() == before


def test_a_draft_can_be_retired_through_the_service(versions, wfadmin):
    v1, v2 = versions

    services.retire_version(v2, actor=wfadmin)

    assert statuses(v1, v2) == ["published", "retired"]
    assert events(actions.WORKFLOW_VERSION_RETIRED) == [
        ("wanda", str(v2.pk), {"number": 2, "status": ["draft", "retired"]})
    ]
