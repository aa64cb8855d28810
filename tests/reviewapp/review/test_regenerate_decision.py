"""Regenerating an image that awaits review is its decision: it leaves the queue as
rejected ("regenerated", with the change, linking the child); the child takes its place
once it has run. An approved image may be run again and stays approved."""

import pytest
from django.urls import reverse

from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.review import services
from reviewapp.review.models import Decision
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def awaiting(generation: Generation) -> Generation:
    generation.status = Generation.Status.AWAITING_REVIEW
    generation.save()
    return generation


def queue_ids(client) -> list[int]:
    return [g.pk for g in client.get(reverse("review_queue")).context["page"]]


def test_regenerate_removes_the_parent_from_the_queue(client, operator, reviewer, workflows):
    parent = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    assert queue_ids(client) == [parent.pk]
    child = services.regenerate(parent, actor=reviewer, params={**parent.params, "width": 96})
    parent.refresh_from_db()
    assert parent.status == Generation.Status.REJECTED
    assert queue_ids(client) == []  # one brief, one decision: nothing is left waiting
    decision = parent.decisions.get()
    assert decision.action == Decision.Action.REGENERATE and decision.ended_review
    assert decision.reason == "regenerated" and decision.child == child
    assert decision.changes == {"width": [64, 96]}
    event = AuditEvent.objects.get(action="generation.rejected", target_id=str(parent.pk))
    assert event.changes["reason"] == "regenerated" and event.changes["child"] == child.pk
    assert event.changes["changed"] == {"width": [64, 96]}
    awaiting(child)  # it ran
    assert queue_ids(client) == [child.pk]


def test_an_approved_image_runs_again_and_stays_approved(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    services.approve(generation, actor=reviewer)
    child = services.regenerate(generation, actor=reviewer)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED
    assert child.status == Generation.Status.QUEUED
    run_again = generation.decisions.get(action="regenerate")
    assert not run_again.ended_review and run_again.reason == ""


def test_a_regenerate_midway_through_n_of_m_ends_the_pending_approvals(
    operator, reviewer, workflows
):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    parent = awaiting_generation(operator)
    services.approve(parent, actor=reviewer)
    second = make_user("second", "reviewer")
    child = services.regenerate(parent, actor=second)
    parent.refresh_from_db()
    assert parent.status == Generation.Status.REJECTED
    event = AuditEvent.objects.get(action="generation.rejected", target_id=str(parent.pk))
    assert event.changes["ended_approvals"] == [reviewer.username]
    # The approval stays in the trail but cannot approve the parent any more ...
    with pytest.raises(services.DecisionRefused, match="rejected"):
        services.approve(parent, actor=make_user("third", "reviewer"))
    # ... and does not carry over to the child, which needs its own two.
    awaiting(child)
    services.approve(child, actor=reviewer)
    child.refresh_from_db()
    assert child.status == Generation.Status.AWAITING_REVIEW
    assert services.counted_approvals(child) == 1


def test_undoing_a_regenerate_cancels_the_child_and_restores_the_parent(
    operator, reviewer, workflows
):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    parent = awaiting_generation(operator)
    services.approve(parent, actor=make_user("first", "reviewer"))
    child = services.regenerate(parent, actor=reviewer)
    services.undo(parent.decisions.get(action="regenerate"), actor=reviewer)
    parent.refresh_from_db()
    child.refresh_from_db()
    assert child.status == Generation.Status.CANCELLED
    assert parent.status == Generation.Status.AWAITING_REVIEW
    assert services.counted_approvals(parent) == 1  # the pending approval is back
    event = AuditEvent.objects.get(action="generation.decision_reversed")
    assert event.changes["child_cancelled"] == child.pk


def test_a_regenerate_whose_child_has_started_cannot_be_undone(operator, reviewer, workflows):
    parent = awaiting_generation(operator)
    child = services.regenerate(parent, actor=reviewer)
    Generation.objects.filter(pk=child.pk).update(status=Generation.Status.RUNNING)
    with pytest.raises(services.DecisionRefused, match="already started"):
        services.undo(parent.decisions.get(action="regenerate"), actor=reviewer)
    parent.refresh_from_db()
    assert parent.status == Generation.Status.REJECTED


def test_g_goes_on_to_the_next_image_and_says_where_the_child_is(
    client, operator, reviewer, workflows
):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("generation_regenerate", args=[first.pk]), follow=True)
    child = Generation.objects.get(parent=first)
    assert response.redirect_chain[-1][0] == reverse("generation_detail", args=[second.pk])
    page = response.content.decode()
    assert "You regenerated" in page and f"#{first.pk}</a> as #{child.pk}" in page


def test_an_author_cannot_decide_by_regenerating_an_image_awaiting_review(
    client, operator, reviewer, workflows
):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="awaits review"):
        services.regenerate(generation, actor=operator)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    assert not generation.children.exists()
    client.login(username=operator.username, password=PASSWORD)
    page = client.get(reverse("generation_detail", args=[generation.pk])).content.decode()
    assert reverse("generation_regenerate", args=[generation.pk]) not in page
    services.reject(generation, actor=reviewer, reason="too dark")
    child = services.regenerate(generation, actor=operator)  # decided: run it again
    assert child.parent == generation


def test_a_regenerate_whose_child_failed_can_be_undone(operator, reviewer, workflows):
    parent = awaiting_generation(operator)
    child = services.regenerate(parent, actor=reviewer)
    Generation.objects.filter(pk=child.pk).update(status=Generation.Status.FAILED)
    services.undo(parent.decisions.get(action="regenerate"), actor=reviewer)
    parent.refresh_from_db()
    assert parent.status == Generation.Status.AWAITING_REVIEW
