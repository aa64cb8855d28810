"""The breaker, the budget and the canary pause a campaign by themselves, with figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import services
from reviewapp.campaigns.models import Campaign
from reviewapp.review import services as review
from tests.conftest import run_worker

from .helpers import swatch_campaign

pytestmark = pytest.mark.django_db


def awaiting(campaign):
    return list(
        Generation.objects.filter(lane=campaign.lane, status="awaiting_review").order_by("id")
    )


def test_the_breaker_pauses_at_the_configured_reject_rate(
    operator, reviewer, workflows, rq_queue, settings, tick, sim
):
    settings.CAMPAIGN_RELEASE_WINDOW = 6
    campaign = swatch_campaign(operator, 20, breaker_min_decided=4, breaker_max_reject_rate=0.5)
    tick()
    run_worker(rq_queue)
    ready = awaiting(campaign)
    assert len(ready) == 6
    review.approve(ready[0], actor=reviewer)
    review.reject(ready[1], actor=reviewer, tags=["Visual artifacts"])
    review.reject(ready[2], actor=reviewer, tags=["Visual artifacts"])
    tick()  # 3 decided: below the minimum of 4, it goes on
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    run_worker(rq_queue)
    review.approve(ready[3], actor=reviewer)  # 2 of 4 rejected: 50% is not above 50%
    tick()
    assert Campaign.objects.get(pk=campaign.pk).status == "running"
    run_worker(rq_queue)
    review.reject(ready[4], actor=reviewer, tags=["Visual artifacts"])  # 3 of 5: 60%
    released_before = Generation.objects.filter(lane=campaign.lane).exclude(status="held").count()
    tick()
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.pause_reason == ("breaker: 3 of 5 cells rejected (60%, the limit is 50%)")
    event = AuditEvent.objects.get(action=actions.CAMPAIGN_PAUSED)
    assert event.actor_name == "system"
    assert event.changes["decided"] == 5 and event.changes["rejected"] == 3
    assert (
        Generation.objects.filter(lane=campaign.lane).exclude(status="held").count()
        <= released_before
    )
    # Resumed, it counts from there: the old figures do not pause it again at once.
    services.resume(campaign, actor=operator)
    assert tick()
    assert Campaign.objects.get(pk=campaign.pk).status == "running"


def test_the_budget_pauses_once_spent(operator, workflows, rq_queue, settings, tick, sim):
    settings.CAMPAIGN_RELEASE_WINDOW = 2
    campaign = swatch_campaign(operator, 10, gpu_budget_s=30)
    tick()
    run_worker(rq_queue)
    first, second = awaiting(campaign)
    for generation in (first, second):
        generation.execution_ended_at = generation.execution_started_at + timedelta(seconds=16)
        generation.save()
    tick()
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.pause_reason == "budget: spent 32 of 30 GPU-seconds"


def test_the_canary_runs_first_and_waits_for_its_review(
    operator, reviewer, workflows, rq_queue, settings, tick, sim
):
    campaign = swatch_campaign(operator, 8, canary_size=2)
    assert tick() == {campaign.pk: 2}
    run_worker(rq_queue)
    assert tick() == {}  # the canary awaits review: nothing more
    first, second = awaiting(campaign)
    review.approve(first, actor=reviewer)
    assert tick() == {}
    review.approve(second, actor=reviewer)
    assert tick() == {campaign.pk: 6}
    assert AuditEvent.objects.filter(action=actions.CAMPAIGN_CANARY_PASSED).count() == 1


def test_a_rejected_canary_pauses_the_campaign_until_its_operator_resumes(
    operator, reviewer, workflows, rq_queue, settings, tick, sim
):
    campaign = swatch_campaign(operator, 8, canary_size=2, breaker_max_reject_rate=0.25)
    tick()
    run_worker(rq_queue)
    for generation in awaiting(campaign):
        review.reject(generation, actor=reviewer, tags=["Off-brand"])
    assert tick() == {}
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.pause_reason.startswith("canary: 2 of 2 cells rejected")
    services.resume(campaign, actor=operator)
    assert tick() == {campaign.pk: 6}


def fail_all(generations):
    for generation in generations:
        Generation.objects.filter(pk=generation.pk).update(
            status="failed", error="node 2 raised", finished_at=timezone.now()
        )


def test_failed_runs_trip_the_breaker_like_rejections(
    operator, workflows, rq_queue, settings, tick, sim
):
    settings.CAMPAIGN_RELEASE_WINDOW = 4
    campaign = swatch_campaign(operator, 20, breaker_min_decided=3, breaker_max_reject_rate=0.5)
    tick()
    run_worker(rq_queue)
    fail_all(awaiting(campaign)[:3])
    tick()
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.pause_reason == "breaker: 3 of 3 cells failed (100%, the limit is 50%)"


def test_a_canary_that_gave_no_image_pauses(operator, workflows, rq_queue, settings, tick, sim):
    campaign = swatch_campaign(operator, 8, canary_size=2)
    tick()
    run_worker(rq_queue)
    fail_all(awaiting(campaign))
    assert tick() == {}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_kind) == ("paused", "canary")
    assert campaign.pause_reason.startswith("canary: none of the 2 canary cells gave an image")


def test_an_operator_pause_that_mentions_the_canary_does_not_pass_it(
    operator, workflows, rq_queue, tick, sim
):
    campaign = swatch_campaign(operator, 8, canary_size=2)
    tick()
    services.pause(campaign, actor=operator, reason="canary looks off")
    services.resume(campaign, actor=operator)
    campaign.refresh_from_db()
    assert campaign.in_canary
    # The pause took the canary's cells back; they go again, and nothing else.
    assert tick() == {campaign.pk: 2}
    assert tick() == {}


def test_a_pause_of_a_cancelled_campaign_changes_nothing(operator, workflows, rq_queue):
    campaign = swatch_campaign(operator, 3)
    services.cancel(campaign, actor=operator)
    services.pause(campaign, actor=None, reason="breaker: late", kind="breaker")
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
