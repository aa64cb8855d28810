"""The reconciler: the database is the ledger, Redis and the backends may forget.

Each round looks at every active generation and makes sure something will move it:
- a job Redis no longer has (restarted or flushed), or one that ended without moving
  the row, is enqueued again; the job then resumes from what the row records;
- a job whose worker died (its heartbeat on the row went stale) is replaced;
- a generation past its deadline fails with that reason, and its prompt is interrupted;
- a generation that waits for a capable backend of its pool is tried again every round.
Enqueueing is idempotent (the job id comes from the row), so running this often, or in
several processes at once, is safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.conf import settings
from django.utils import timezone
from rq.job import JobStatus

from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import failures, submit
from reviewapp.briefs.worker.enqueue import LIVE, enqueue_generation, fetch_job, queue
from reviewapp.lib import pools as pool_config

logger = logging.getLogger(__name__)


@dataclass
class Report:
    enqueued: list[int] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)

    def __bool__(self):
        return bool(self.enqueued or self.replaced or self.expired)


def reconcile(*, now=None) -> Report:
    now = now or timezone.now()
    # A row touched this recently may have its enqueue still on the way (on commit).
    grace = timedelta(seconds=settings.RECONCILE_GRACE_S)
    # No heartbeat for this long while its job claims to run: the worker is gone.
    stale = timedelta(seconds=settings.WORKER_STALE_S)
    report = Report()
    active = Generation.objects.filter(status__in=Generation.ACTIVE).select_related(
        "brief__workflow_version__workflow"
    )
    waiting: dict[str, set[str]] = {}  # pool -> ids of the jobs in its queue's list
    configured = set(pool_config.pool_names())
    for generation in active.iterator(chunk_size=500):
        pool = generation.pool
        if failures.overdue(generation, now) and failures.expire(
            generation.pk, now, by="reconciler"
        ):
            report.expired.append(generation.pk)
            continue
        if pool not in configured:
            _wait_for_pool(generation)
            continue
        # A row waiting for a backend was left by its job on purpose: no grace needed.
        if generation.updated_at > now - grace and not generation.waiting_reason:
            continue
        job = fetch_job(generation.pk, pool)
        status = job.get_status(refresh=False) if job is not None else None
        # A row in flight may name a prompt that exists: resume it before new work.
        in_flight = generation.status != Generation.Status.QUEUED
        if status == JobStatus.QUEUED:
            if pool not in waiting:
                waiting[pool] = set(queue(pool).get_job_ids())
            if job.id in waiting[pool]:
                continue
            # "Queued" but in no queue list: taken by a worker that died before it
            # marked the job started. Nothing would ever run it.
            logger.warning("%s: job %s is queued in name only; enqueueing", generation, job.id)
            job.delete()
            enqueue_generation(generation.pk, pool, at_front=in_flight)
            report.enqueued.append(generation.pk)
            continue
        if status in LIVE:
            if status == JobStatus.STARTED and _worker_gone(generation, job, now - stale):
                logger.warning("%s: worker stopped beating; replacing job %s", generation, job.id)
                job.delete()
                submit.break_dead_holders_lock(generation.pk)
                enqueue_generation(generation.pk, pool, at_front=True)
                report.replaced.append(generation.pk)
            continue
        logger.info(
            "%s is %s but its job is %s; enqueueing",
            generation,
            generation.status,
            status or "gone",
        )
        enqueue_generation(generation.pk, pool, at_front=in_flight)
        report.enqueued.append(generation.pk)
    return report


def _worker_gone(generation: Generation, job, cutoff) -> bool:
    """No sign of life since `cutoff`: not from the job starting, nor from the row's
    heartbeat (read again now: the row above may be older than the job)."""
    started = job.started_at
    if started is not None and timezone.is_naive(started):
        started = timezone.make_aware(started, UTC)
    if started is not None and started > cutoff:
        return False
    beat = (
        Generation.objects.filter(pk=generation.pk)
        .values_list("heartbeat_at", "updated_at")
        .first()
    )
    if beat is None:
        return False
    last = max(filter(None, beat))
    return last < cutoff


def _wait_for_pool(generation: Generation) -> None:
    """A row of a pool no longer configured stays as it is, saying so, until the pool is
    configured again (or its deadline fails it): nothing is dropped."""
    reason = pool_config.unknown_pool_message(generation.pool)
    logger.error("%s: %s", generation, reason)
    if generation.status == Generation.Status.QUEUED and generation.waiting_reason != reason:
        Generation.objects.filter(pk=generation.pk, status=Generation.Status.QUEUED).update(
            waiting_reason=reason
        )
