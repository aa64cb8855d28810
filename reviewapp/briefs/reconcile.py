"""The reconciler: the database is the ledger, Redis and the backends may forget.

Each round looks at every active generation and makes sure something will move it:
- a job Redis no longer has (restarted or flushed), or one that ended without moving
  the row, is enqueued again; the job then resumes from what the row records;
- a job whose worker died (its heartbeat on the row went stale) is replaced;
- a generation past its deadline fails with that reason, and its prompt is interrupted.
Enqueueing is idempotent (the job id comes from the row), so running this often, or in
several processes at once, is safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.job import JobStatus

from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.jobs import LIVE, enqueue_cancel, enqueue_generation, job_id_for
from reviewapp.briefs.models import Generation

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
    waiting: dict[str, set[str]] = {}  # queue name -> ids of the jobs in its list
    for generation in active.iterator(chunk_size=500):
        queue_name = generation.brief.workflow_version.workflow.queue
        if _expire(generation, now):
            report.expired.append(generation.pk)
            continue
        if generation.updated_at > now - grace:
            continue
        queue = django_rq.get_queue(queue_name)
        job = queue.fetch_job(job_id_for(generation.pk))
        status = job.get_status(refresh=False) if job is not None else None
        # A row in flight may name a prompt that exists: resume it before new work.
        in_flight = generation.status != Generation.Status.QUEUED
        if status == JobStatus.QUEUED:
            if queue_name not in waiting:
                waiting[queue_name] = set(queue.get_job_ids())
            if job.id in waiting[queue_name]:
                continue
            # "Queued" but in no queue list: taken by a worker that died before it
            # marked the job started. Nothing would ever run it.
            logger.warning("%s: job %s is queued in name only; enqueueing", generation, job.id)
            job.delete()
            enqueue_generation(generation.pk, queue_name, at_front=in_flight)
            report.enqueued.append(generation.pk)
            continue
        if status in LIVE:
            if status == JobStatus.STARTED and _worker_gone(generation, job, now - stale):
                logger.warning("%s: worker stopped beating; replacing job %s", generation, job.id)
                job.delete()
                enqueue_generation(generation.pk, queue_name, at_front=True)
                report.replaced.append(generation.pk)
            continue
        logger.info("%s is %s but its job is %s; enqueueing", generation, generation.status,
                    status or "gone")  # fmt: skip
        enqueue_generation(generation.pk, queue_name, at_front=in_flight)
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


def _expire(generation: Generation, now) -> bool:
    """Fail the generation if it is past a deadline. True when it did."""
    queued_too_long = (
        generation.status == Generation.Status.QUEUED
        and generation.queue_deadline is not None
        and now > generation.queue_deadline
    )
    ran_too_long = generation.run_deadline is not None and now > generation.run_deadline
    if not (queued_too_long or ran_too_long):
        return False
    with transaction.atomic():
        locked = Generation.objects.select_for_update(of=("self",)).get(pk=generation.pk)
        if locked.status not in Generation.ACTIVE:
            return False
        workflow = generation.brief.workflow_version.workflow
        if ran_too_long:
            message = f"did not finish within {workflow.run_timeout_s} s"
        else:
            message = f"waited in the queue longer than {workflow.queue_timeout_s} s"
        locked.mark_failed(message)
        locked.save()
        record(actions.GENERATION_FAILED, actor=None, target=locked, workflow_slug=workflow.slug,
               changes={"error": message, "by": "reconciler"})  # fmt: skip
        if locked.prompt_id and locked.backend:
            backend, prompt_id = locked.backend, str(locked.prompt_id)
            transaction.on_commit(
                lambda: enqueue_cancel(backend, prompt_id, workflow.queue), robust=True
            )
    return True
