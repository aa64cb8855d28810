"""Undo is a reversal, not a deletion: a new decision row marks the earlier one reversed,
within DECISION_UNDO_S, and the image returns to review (the one transition back)."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import SETTLE_MARGIN_S, Generation, IllegalTransition
from reviewapp.review import services
from reviewapp.review.models import Decision
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def aged(decision: Decision, seconds: float) -> Decision:
    """The decision as if made `seconds` ago."""
    Decision.objects.filter(pk=decision.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    decision.refresh_from_db()
    return decision


def test_undo_inside_the_window_restores_the_image_and_keeps_both_rows(
    operator, reviewer, workflows
):
    generation = awaiting_generation(operator)
    decision = services.reject(generation, actor=reviewer, reason="too dark")
    reversal = services.undo(decision, actor=reviewer)
    generation.refresh_from_db()
    decision.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    assert generation.decided_at is None
    assert decision.reversed_by == reversal and reversal.action == Decision.Action.UNDO
    assert generation.decisions.count() == 2  # nothing deleted
    event = AuditEvent.objects.get(action="generation.decision_reversed")
    assert event.changes["status"] == ["rejected", "awaiting_review"]
    assert event.changes["reversed"] == {"decision": decision.pk, "action": "reject"}


def test_an_undone_approval_no_longer_counts_and_may_be_given_again(operator, reviewer, workflows):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    generation = awaiting_generation(operator)
    first = services.approve(generation, actor=reviewer)
    assert services.counted_approvals(generation) == 1
    services.undo(first, actor=reviewer)
    assert services.counted_approvals(generation) == 0
    # Uniqueness counts only standing approvals: the same reviewer approves again.
    again = services.approve(generation, actor=reviewer)
    assert again.pk != first.pk and services.counted_approvals(generation) == 1
    # ... and still only once: a second standing approval is refused by the database.
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(generation=generation, action="approve", actor=reviewer)
    services.approve(generation, actor=make_user("second", "reviewer"))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED


def test_undoing_the_deciding_approval_reopens_and_keeps_the_earlier_one(
    operator, reviewer, workflows
):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    generation = awaiting_generation(operator)
    services.approve(generation, actor=reviewer)
    second = make_user("second", "reviewer")
    deciding = services.approve(generation, actor=second)
    assert deciding.ended_review
    services.undo(deciding, actor=second)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    assert services.counted_approvals(generation) == 1


def test_undo_after_the_window_is_refused(operator, reviewer, workflows, settings):
    generation = awaiting_generation(operator)
    decision = aged(services.approve(generation, actor=reviewer), settings.DECISION_UNDO_S + 1)
    with pytest.raises(services.DecisionRefused, match="undo window has passed"):
        services.undo(decision, actor=reviewer)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED
    assert not Decision.objects.filter(action="undo").exists()


def test_only_ones_own_last_decision_can_be_undone(operator, reviewer, workflows):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    earlier = services.approve(first, actor=reviewer)
    services.approve(second, actor=reviewer)
    with pytest.raises(services.DecisionRefused, match="only your last decision"):
        services.undo(earlier, actor=reviewer)
    other = make_user("other", "reviewer")
    with pytest.raises(PermissionDenied):
        services.undo(earlier, actor=other)


def test_undo_is_refused_once_someone_decided_on_the_image_since(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    rejection = services.reject(generation, actor=reviewer, reason="blurry")
    other = make_user("other", "reviewer")
    services.regenerate(generation, actor=other)  # "run again" after the rejection
    with pytest.raises(services.DecisionRefused, match="other has decided"):
        services.undo(rejection, actor=reviewer)


def test_a_double_pressed_undo_is_one_reversal(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    decision = services.approve(generation, actor=reviewer)
    assert services.undo(decision, actor=reviewer) == services.undo(decision, actor=reviewer)
    assert Decision.objects.filter(action="undo").count() == 1
    assert AuditEvent.objects.filter(action="generation.decision_reversed").count() == 1


def test_the_form_of_an_undone_decision_does_not_decide_again(operator, reviewer, workflows):
    import uuid

    generation = awaiting_generation(operator)
    key = uuid.uuid4()
    decision = services.approve(generation, actor=reviewer, key=key)
    services.undo(decision, actor=reviewer)
    with pytest.raises(services.DecisionRefused, match="was undone"):
        services.approve(generation, actor=reviewer, key=key)


def test_the_state_machine_goes_back_only_from_a_decision():
    generation = Generation(status=Generation.Status.APPROVED)
    with pytest.raises(IllegalTransition):
        generation.mark_awaiting_review()  # ingest may not reopen a decided image
    generation.mark_reopened()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    for status in set(Generation.Status) - Generation.DECIDED:
        with pytest.raises(IllegalTransition):
            Generation(status=status).mark_reopened()


def test_outside_consumers_see_a_decision_only_once_it_can_no_longer_be_undone(
    operator, reviewer, workflows, settings
):
    generation = awaiting_generation(operator)
    decision = services.approve(generation, actor=reviewer)
    assert not Generation.objects.settled().filter(pk=generation.pk).exists()
    generation.refresh_from_db()
    assert generation.decided_at == decision.created_at  # the window counts from both
    just_after = decision.created_at + timedelta(seconds=settings.DECISION_UNDO_S + 1)
    # An undo checked just inside the window may still be committing: not yet settled.
    assert not Generation.objects.settled(now=just_after).filter(pk=generation.pk).exists()
    later = decision.created_at + timedelta(seconds=settings.DECISION_UNDO_S + SETTLE_MARGIN_S + 1)
    assert Generation.objects.settled(now=later).filter(pk=generation.pk).exists()
    services.undo(decision, actor=reviewer)
    assert not Generation.objects.settled(now=later).filter(pk=generation.pk).exists()


def test_the_undo_bar_offers_the_last_decision_and_undo_takes_the_reviewer_back(
    client, operator, reviewer, workflows
):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("generation_approve", args=[first.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("generation_detail", args=[second.pk])
    decision = Decision.objects.get(generation=first)
    undo_url = reverse("decision_undo", args=[decision.pk])
    page = response.content.decode()
    assert f'action="{undo_url}"' in page and "You approved" in page
    response = client.post(undo_url)
    assert response.url == reverse("generation_detail", args=[first.pk])
    first.refresh_from_db()
    assert first.status == Generation.Status.AWAITING_REVIEW
    page = client.get(response.url).content.decode()
    assert "awaits review again" in page
    assert f'action="{undo_url}"' not in page  # nothing left to undo


def test_someone_elses_decision_cannot_be_undone_over_http(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    decision = services.approve(generation, actor=reviewer)
    other = make_user("other", "reviewer")
    client.login(username=other.username, password=PASSWORD)
    assert client.post(reverse("decision_undo", args=[decision.pk])).status_code == 404
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED


def test_the_migrations_fill_in_decisions_made_before_undo_existed(operator, reviewer, workflows):
    import importlib

    from django.apps import apps

    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    approved, rejected, pending = (awaiting_generation(operator) for _ in range(3))
    services.approve(approved, actor=reviewer)
    services.approve(approved, actor=make_user("second", "reviewer"))
    services.reject(rejected, actor=reviewer, reason="blurry")
    services.approve(pending, actor=reviewer)
    # As rows stood before the fields existed.
    Decision.objects.update(ended_review=False)
    Generation.objects.update(decided_at=None)
    importlib.import_module(
        "reviewapp.briefs.migrations.0008_generation_decided_at"
    ).fill_decided_at(apps, None)
    importlib.import_module(
        "reviewapp.review.migrations.0002_undo_and_claims"
    ).mark_decisions_that_ended_review(apps, None)
    last = Decision.objects.filter(generation=approved).order_by("-created_at", "-id")
    assert [d.ended_review for d in last] == [True, False]
    assert Decision.objects.get(generation=rejected).ended_review
    assert not Decision.objects.get(generation=pending).ended_review
    approved.refresh_from_db()
    pending.refresh_from_db()
    assert approved.decided_at == last[0].created_at and pending.decided_at is None
