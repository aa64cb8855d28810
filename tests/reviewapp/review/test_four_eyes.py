"""Authors of a generation (its submitter, whoever edited a parameter other than the seed
on its lineage) never approve it, nor count towards its approvals."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from reviewapp.briefs import services as brief_services
from reviewapp.briefs.models import Generation
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.review import services
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def awaiting(generation: Generation) -> Generation:
    generation.status = Generation.Status.AWAITING_REVIEW
    generation.save()
    return generation


def seeded_generation(operator) -> Generation:
    """A generation of a workflow that takes a seed, waiting for review."""
    version = WorkflowVersion.objects.get(workflow__slug="sdxl_base_refiner", status="published")
    params = {"prompt": "a red kite", "seed": 7, "width": 1024, "height": 1024}
    brief = brief_services.submit_brief(version, params, actor=operator)
    return awaiting(brief.generations.get())


@pytest.fixture
def editor(db):
    return make_user("edith", "reviewer")


@pytest.fixture
def other_reviewer(db):
    return make_user("otto", "reviewer")


def test_an_editor_cannot_approve_the_child_they_edited(client, operator, editor, workflows):
    root = awaiting_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "width": 96}))
    with pytest.raises(PermissionDenied):
        services.approve(child, actor=editor)
    client.login(username=editor.username, password=PASSWORD)
    response = client.post(reverse("generation_approve", args=[child.pk]))
    assert response.status_code == 403
    response = client.post(reverse("generation_reject", args=[child.pk]), {"reason": "meh"})
    assert response.status_code == 403
    child.refresh_from_db()
    assert child.status == Generation.Status.AWAITING_REVIEW and not child.decisions.exists()


def test_an_editors_attempt_does_not_count_towards_the_approvals(
    client, operator, editor, other_reviewer, workflows
):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    root = awaiting_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "height": 96}))
    client.login(username=editor.username, password=PASSWORD)
    response = client.post(reverse("review_bulk"), {"ids": [child.pk], "action": "approve"})
    assert response.status_code == 302
    services.approve(child, actor=other_reviewer)
    child.refresh_from_db()
    assert child.status == Generation.Status.AWAITING_REVIEW  # 1 of 2, not 2 of 2
    assert list(child.decisions.values_list("actor__username", flat=True)) == ["otto"]


def test_a_new_seed_regenerator_may_approve_the_child(operator, editor, workflows):
    root = seeded_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor))
    assert child.params["seed"] != root.params["seed"]
    services.approve(child, actor=editor)
    child.refresh_from_db()
    assert child.status == Generation.Status.APPROVED


def test_an_edit_of_the_seed_alone_does_not_make_an_author(operator, editor, workflows):
    root = seeded_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "seed": 99}))
    assert not child.is_authored_by(editor)
    services.approve(child, actor=editor)


def test_authorship_carries_down_to_a_new_seed_grandchild(
    operator, editor, other_reviewer, workflows
):
    root = seeded_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "steps": 40}))
    grandchild = awaiting(services.regenerate(child, actor=other_reviewer))
    assert set(grandchild.authors.values_list("username", flat=True)) == {"olivia", "edith"}
    with pytest.raises(PermissionDenied):
        services.approve(grandchild, actor=editor)
    services.approve(grandchild, actor=other_reviewer)  # a new seed made them no author
    grandchild.refresh_from_db()
    assert grandchild.status == Generation.Status.APPROVED


def test_self_review_setting_lets_an_editor_approve(settings, operator, editor, workflows):
    settings.ALLOW_SELF_REVIEW = True
    root = awaiting_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "width": 96}))
    services.approve(child, actor=editor)


def test_the_detail_page_offers_no_approve_to_an_author(
    client, operator, editor, other_reviewer, workflows
):
    root = awaiting_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "width": 96}))
    approve_url = reverse("generation_approve", args=[child.pk])
    client.login(username=editor.username, password=PASSWORD)
    page = client.get(reverse("generation_detail", args=[child.pk])).content.decode()
    assert approve_url not in page and "You are an author of this image" in page
    client.logout()
    client.login(username=other_reviewer.username, password=PASSWORD)
    page = client.get(reverse("generation_detail", args=[child.pk])).content.decode()
    assert approve_url in page


def test_the_next_awaiting_image_skips_what_the_reviewer_authored(
    client, operator, editor, workflows
):
    first = awaiting_generation(operator)
    root = awaiting_generation(operator)
    edited = awaiting(services.regenerate(root, actor=editor, params={**root.params, "width": 96}))
    last = awaiting_generation(operator)
    client.login(username=editor.username, password=PASSWORD)
    response = client.post(reverse("generation_approve", args=[first.pk]))
    assert response.url == reverse("generation_detail", args=[last.pk])
    assert edited.pk < last.pk


def test_the_migration_gives_existing_lineages_the_same_authors(
    operator, editor, other_reviewer, workflows
):
    root = seeded_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "steps": 40}))
    grandchild = services.regenerate(child, actor=other_reviewer)
    expected = {
        g.pk: set(g.authors.values_list("pk", flat=True)) for g in (root, child, grandchild)
    }
    Generation.authors.through.objects.all().delete()
    migration = importlib.import_module("reviewapp.briefs.migrations.0005_generation_authors")
    migration.backfill_authors(apps, None)
    got = {g.pk: set(g.authors.values_list("pk", flat=True)) for g in (root, child, grandchild)}
    assert got == expected
    assert expected[grandchild.pk] == {operator.pk, editor.pk}


def test_an_authors_earlier_approval_never_counts(
    settings, operator, editor, other_reviewer, workflows
):
    """An approval an author gave while ALLOW_SELF_REVIEW was on (or before authorship was
    recorded) is not a second pair of eyes once the rule holds again."""
    root = awaiting_generation(operator)
    child = awaiting(services.regenerate(root, actor=editor, params={**root.params, "width": 96}))
    workflow = child.brief.workflow_version.workflow
    workflow.required_approvals = 2
    workflow.save()
    settings.ALLOW_SELF_REVIEW = True
    services.approve(child, actor=editor)
    settings.ALLOW_SELF_REVIEW = False
    services.approve(child, actor=other_reviewer)
    child.refresh_from_db()
    assert child.status == Generation.Status.AWAITING_REVIEW
    assert services.counted_approvals(child) == 1
