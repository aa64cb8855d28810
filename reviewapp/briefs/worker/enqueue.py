"""The one place that puts jobs on a pool's RQ queue.

A generation's queue is its ``pool``, stored on the row when the row is created (a workflow
moved to another pool later does not strand the rows already waiting). Job ids come from the
row, so enqueueing twice never makes two jobs. Call these on commit (services do), so a worker
never looks for a row that is not visible yet.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import django_rq
from django.conf import settings
from rq import Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JobStatus

logger = logging.getLogger(__name__)

LIVE = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})

# Waits between attempts when failures are temporary (seconds); how many attempts is
# settings.GENERATION_MAX_ATTEMPTS. RQ schedules them (jobs are enqueued with a Retry).
RETRY_DELAYS = (2, 10, 30, 60)

RUN_GENERATION = "reviewapp.briefs.worker.jobs.run_generation"
CANCEL_PROMPT = "reviewapp.briefs.worker.jobs.cancel_prompt"


def job_id_for(generation_id: int) -> str:
    return f"generation-{generation_id}"


def queue(pool: str):
    """The RQ queue of ``pool`` (``KeyError`` names it when it is not configured)."""
    try:
        return django_rq.get_queue(pool)
    except KeyError:
        raise KeyError(f"no RQ queue for pool {pool!r}: it is not in COMFYUI_POOLS") from None


def fetch_job(generation_id: int, pool: str):
    return queue(pool).fetch_job(job_id_for(generation_id))


def enqueue_generation(
    generation_id: int,
    pool: str,
    *,
    delay: float | None = None,
    at_front: bool = False,
    new: bool = False,
):
    """Put the generation's job on its pool's queue, unless a live job for it is there.

    ``new``: the row was created in this transaction, so it has no job yet (skips a lookup).
    """
    rq_queue = queue(pool)
    job_id = job_id_for(generation_id)
    existing = None if new else rq_queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=False) in LIVE:
        logger.info("job %s is already %s; not enqueued again", job_id, existing.get_status())
        return existing
    kwargs = _job_options(generation_id)
    if delay:
        return rq_queue.enqueue_in(
            timedelta(seconds=delay), RUN_GENERATION, generation_id, **kwargs
        )
    return rq_queue.enqueue(RUN_GENERATION, generation_id, at_front=at_front, **kwargs)


def _job_options(generation_id: int) -> dict:
    return {
        "job_id": job_id_for(generation_id),
        # Temporary failures come back as RetryLater: RQ runs the job again after these
        # intervals; the row's attempt count decides when to give up.
        "retry": Retry(max=settings.GENERATION_MAX_ATTEMPTS, interval=list(RETRY_DELAYS)),
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"run generation {generation_id}",
    }


def enqueue_new_generations(generation_ids: list[int], pool: str) -> list:
    """Jobs for rows that have none yet (just released from held), in one round trip
    (RQ's enqueue_many in a pipeline), in the order given."""
    if not generation_ids:
        return []
    rq_queue = queue(pool)
    data = [
        rq_queue.prepare_data(RUN_GENERATION, args=(pk,), **_job_options(pk))
        for pk in generation_ids
    ]
    with rq_queue.connection.pipeline() as pipe:
        jobs = rq_queue.enqueue_many(data, pipeline=pipe)
        pipe.execute()
    return jobs


def enqueue_cancel(backend: str, prompt_id: str, pool: str):
    """Remove or interrupt (targeted) one prompt on its backend, from a worker of its pool."""
    return queue(pool).enqueue(
        CANCEL_PROMPT, backend, prompt_id, job_id=f"cancel-{prompt_id}", result_ttl=600
    )


def drop_job(generation_id: int, pool: str) -> None:
    """Take a waiting job of the generation off its queue.

    A job already running is left alone: it ends by itself when the backend reports the
    prompt interrupted, and then finds the row cancelled.
    """
    job = fetch_job(generation_id, pool)
    if job is None or job.get_status() == JobStatus.STARTED:
        return
    try:
        job.cancel()
    except (InvalidJobOperation, NoSuchJobError):
        logger.info("job %s finished before it could be dropped", job.id)
