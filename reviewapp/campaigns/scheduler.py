"""Releases campaign cells into their pool's queue: a bounded window, campaigns in turn.

A single FIFO queue would run a 5,000-cell campaign to the end before a 20-cell one
submitted a minute later, and put every single brief behind both. So a campaign's cells
wait as held rows, and each round here, per pool:
- asks each running campaign's guard (breaker, budget, canary) whether it may go on;
- counts the released campaign cells still waiting in the pool's queue, and releases up
  to CAMPAIGN_RELEASE_WINDOW minus that, one cell per campaign in turn, starting with
  the campaign served longest ago (round-robin, not FIFO across campaigns), none beyond
  a campaign's share of the window (so cells no backend can take yet do not fill it);
- enqueues their jobs in one round trip once the release commits.
Single briefs are never held: they join the queue at once, behind at most the window,
and submit-ahead takes them before released cells (briefs.worker.dispatch).

A released cell's queue deadline counts from its release. The reconciler looks only at
queued and running rows, so it leaves held ones alone. One scheduler runs at a time (a
Redis lease); running two would only release twice the window, never a row twice.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from reviewapp.audit import actions
from reviewapp.audit.services import record_many
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends
from reviewapp.briefs.worker.enqueue import enqueue_new_generations
from reviewapp.campaigns import guard
from reviewapp.campaigns.models import Campaign

logger = logging.getLogger(__name__)

LEASE_KEY = "reviewapp:campaign-scheduler"
LEASE_S = 30


def tick() -> dict[int, int]:
    """One round over every pool with a running campaign, under the lease; returns
    {campaign id: cells released}. Another scheduler holding the lease: nothing."""
    lease = backends.redis().lock(LEASE_KEY, timeout=LEASE_S, blocking=False)
    if not lease.acquire(blocking=False):
        return {}
    try:
        released: dict[int, int] = {}
        pools = (
            Campaign.objects.filter(status=Campaign.Status.RUNNING)
            .values_list("pool", flat=True)
            .distinct()
            .order_by()
        )
        for pool in list(pools):
            try:
                released.update(release_pool(pool))
            except Exception:
                # One pool's trouble (a campaign changed under the round) does not keep
                # the others waiting for the next round.
                logger.exception("scheduler round of pool %s failed", pool)
        return released
    finally:
        try:
            lease.release()
        except Exception:  # expired meanwhile (a very slow round): nothing to release
            logger.warning("scheduler lease expired during a round")


def release_pool(pool: str) -> dict[int, int]:
    """Top up `pool`'s window with cells of its running campaigns, in turn."""
    running = (
        Campaign.objects.filter(status=Campaign.Status.RUNNING, pool=pool)
        .select_related("workflow_version__workflow")
        .order_by(F("last_released_at").asc(nulls_first=True), "id")
    )
    # A campaign with nothing held has nothing to release (nor to stop): one indexed
    # lookup, so finished campaigns cost next to nothing here.
    campaigns = [c for c in running if _has_held(c) and not guard.check(c)]
    if not campaigns:
        return {}
    waiting = dict(
        Generation.objects.filter(pool=pool, status=Generation.Status.QUEUED)
        .exclude(lane="")
        .values_list("lane")
        .annotate(n=Count("id"))
        .order_by()
    )
    window = settings.CAMPAIGN_RELEASE_WINDOW
    # Each campaign's share of the window, and no more of it counted against the others:
    # one whose cells sit in the queue (no backend can take them now, or it had the pool
    # to itself a moment ago) does not keep them out.
    share = max(1, window // len(campaigns))
    lanes = {c.lane for c in campaigns}
    in_window = sum(min(n, share) if lane in lanes else n for lane, n in waiting.items())
    room = window - in_window
    if room <= 0:
        return {}
    own_room = {c.pk: share - waiting.get(c.lane, 0) for c in campaigns}
    candidates = {
        c.pk: _held_ids(c, min(room, own_room[c.pk])) if own_room[c.pk] > 0 else []
        for c in campaigns
    }
    chosen: dict[int, list[int]] = {campaign.pk: [] for campaign in campaigns}
    while room > 0 and any(candidates.values()):
        for campaign in campaigns:
            if room > 0 and candidates[campaign.pk]:
                chosen[campaign.pk].append(candidates[campaign.pk].pop(0))
                room -= 1
    released = {}
    for campaign in campaigns:
        if chosen[campaign.pk]:
            released[campaign.pk] = _release(campaign, chosen[campaign.pk])
    return released


def _has_held(campaign: Campaign) -> bool:
    return Generation.objects.filter(lane=campaign.lane, status=Generation.Status.HELD).exists()


def _held_ids(campaign: Campaign, limit: int) -> list[int]:
    held = Generation.objects.filter(lane=campaign.lane, status=Generation.Status.HELD)
    if campaign.in_canary:
        held = held.filter(pk__in=guard.canary_generations(campaign).values("pk"))
    return list(held.order_by("id").values_list("id", flat=True)[:limit])


def _release(campaign: Campaign, ids: list[int]) -> int:
    now = timezone.now()
    with transaction.atomic():
        # Still running, checked and marked in one statement: a pause or cancel that
        # committed since the round began releases nothing of it.
        if not Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
            last_released_at=now
        ):
            return 0
        # Locked and still held: a cell cancelled or released meanwhile is not moved.
        locked = list(
            Generation.objects.filter(pk__in=ids, status=Generation.Status.HELD)
            .select_for_update()
            .order_by("id")
            .values_list("id", flat=True)
        )
        Generation.objects.filter(pk__in=locked).release(campaign.workflow.queue_timeout_s, now=now)
        record_many(
            actions.GENERATION_RELEASED,
            actor=None,
            items=((Generation(pk=pk), {"campaign": campaign.pk}) for pk in locked),
            workflow_slug=campaign.workflow.slug,
        )
        transaction.on_commit(partial(enqueue_new_generations, locked, campaign.pool), robust=True)
    return len(locked)
