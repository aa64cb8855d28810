"""The scheduler: a bounded window per pool, campaigns in turn, single briefs first; and
pause, resume and cancel of a whole campaign."""

from __future__ import annotations

import pytest

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker.reconcile import reconcile
from reviewapp.campaigns import services
from reviewapp.campaigns.models import Campaign
from tests.conftest import run_worker
from tests.reviewapp.factories import submit_swatch

from .helpers import swatch_campaign

pytestmark = pytest.mark.django_db


def by_status(campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Generation.objects.filter(lane=campaign.lane).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_a_round_releases_the_window_and_enqueues_its_jobs(
    operator, workflows, rq_queue, settings, tick
):
    settings.CAMPAIGN_RELEASE_WINDOW = 5
    campaign = swatch_campaign(operator, 12)
    assert tick() == {campaign.pk: 5}
    assert by_status(campaign) == {"queued": 5, "held": 7}
    assert rq_queue.count == 5
    released = Generation.objects.filter(lane=campaign.lane, status="queued")
    # Their queue deadline counts from the release, and they went in cell order.
    assert all(g.queue_deadline is not None for g in released)
    assert sorted(g.brief.cell.index for g in released) == [0, 1, 2, 3, 4]
    assert AuditEvent.objects.filter(action=actions.GENERATION_RELEASED).count() == 5
    # The window is full: the next round releases nothing until cells leave the queue.
    assert tick() == {}


def test_two_campaigns_take_turns(operator, workflows, rq_queue, settings, tick):
    settings.CAMPAIGN_RELEASE_WINDOW = 6
    big = swatch_campaign(operator, 100)
    small = swatch_campaign(operator, 4)
    assert tick() == {big.pk: 3, small.pk: 3}


def test_the_reconciler_leaves_held_cells_alone(operator, workflows, rq_queue, settings):
    campaign = swatch_campaign(operator, 3)
    Generation.objects.filter(lane=campaign.lane).update(updated_at="2000-01-01T00:00:00Z")
    report = reconcile()
    assert not report
    assert rq_queue.count == 0


def test_pause_takes_back_what_waits_in_the_queue_and_resume_releases_it_again(
    operator, workflows, rq_queue, settings, tick, django_capture_on_commit_callbacks, sim
):
    settings.CAMPAIGN_RELEASE_WINDOW = 4
    campaign = swatch_campaign(operator, 10)
    tick()
    assert rq_queue.count == 4
    with django_capture_on_commit_callbacks(execute=True):
        services.pause(campaign, actor=operator, reason="wrong colours")
    assert by_status(campaign) == {"held": 10}
    assert rq_queue.count == 0  # their jobs left the RQ queue
    assert all(g.queue_deadline is None for g in Generation.objects.filter(lane=campaign.lane))
    event = AuditEvent.objects.get(action=actions.CAMPAIGN_PAUSED)
    assert event.changes == {"reason": "wrong colours", "kind": "operator", "put_back": 4}
    assert tick() == {}  # paused: nothing released
    services.resume(campaign, actor=operator)
    assert tick() == {campaign.pk: 4}
    run_worker(rq_queue)
    assert by_status(campaign) == {"awaiting_review": 4, "held": 6}


def test_a_job_taken_after_the_pause_runs_nothing(
    operator, workflows, rq_queue, settings, tick, sim
):
    settings.CAMPAIGN_RELEASE_WINDOW = 2
    campaign = swatch_campaign(operator, 2)
    tick()
    # Paused, but its on-commit step (dropping the jobs) has not run: a worker takes
    # the jobs, finds the rows held, and leaves them.
    services.pause(campaign, actor=operator)
    assert rq_queue.count == 2
    run_worker(rq_queue)
    assert by_status(campaign) == {"held": 2}


def test_cancel_stops_every_cell_left(
    operator, workflows, rq_queue, settings, tick, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_RELEASE_WINDOW = 3
    campaign = swatch_campaign(operator, 8)
    tick()
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel(campaign, actor=operator)
    assert by_status(campaign) == {"cancelled": 8}
    assert rq_queue.count == 0
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
    cancelled = AuditEvent.objects.filter(action=actions.GENERATION_CANCELLED)
    assert cancelled.count() == 8


def test_a_single_brief_goes_ahead_of_released_cells(
    operator, workflows, rq_queue, settings, tick, sim
):
    from reviewapp.briefs.worker import dispatch

    settings.CAMPAIGN_RELEASE_WINDOW = 4
    settings.WORKER_SUBMIT_AHEAD = 1
    campaign = swatch_campaign(operator, 6)
    tick()
    single = submit_swatch(operator).generations.get()
    run = dispatch._claim_next("default", 1)
    assert run.generation.pk == single.pk
    assert by_status(campaign)["queued"] == 4


def test_the_small_campaign_finishes_before_the_big_one_is_a_tenth_done(
    operator, workflows, rq_queue, settings, tick, sim
):
    """Two campaigns in one pool, 1,000 and 20 cells, the big one first: real jobs on
    the simulator, the scheduler between worker bursts."""
    big = swatch_campaign(operator, 1000)
    for _ in range(2):  # the big one has the pool to itself for a while
        tick()
        run_worker(rq_queue)
    small = swatch_campaign(operator, 20)
    for _ in range(50):
        tick()
        run_worker(rq_queue)
        if by_status(small).get("awaiting_review") == 20:
            break
    assert by_status(small) == {"awaiting_review": 20}
    done = by_status(big)["awaiting_review"]
    print(f"the big campaign had {done} of 1,000 cells done when the small one finished")
    assert done < 100


def test_a_pause_that_lands_during_a_round_releases_nothing(
    operator, workflows, rq_queue, settings, tick
):
    from reviewapp.campaigns.scheduler import _release

    campaign = swatch_campaign(operator, 5)
    ids = list(Generation.objects.filter(lane=campaign.lane).values_list("id", flat=True))
    services.pause(campaign, actor=operator)  # after the round read it as running
    assert _release(campaign, ids) == 0
    assert by_status(campaign) == {"held": 5}


def test_cells_no_backend_can_take_do_not_keep_other_campaigns_out(
    operator, workflows, rq_queue, settings, tick
):
    settings.CAMPAIGN_RELEASE_WINDOW = 6
    stuck = swatch_campaign(operator, 30)
    tick()
    # Its released cells wait for a backend that never comes.
    Generation.objects.filter(lane=stuck.lane, status="queued").update(
        waiting_reason="no backend in pool default has the checkpoint"
    )
    other = swatch_campaign(operator, 10)
    assert tick() == {other.pk: 3}  # its share of the window
