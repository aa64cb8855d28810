"""RQ entry points. They take primary keys (or plain values) and hand the work to plain
functions."""

from __future__ import annotations

import logging
from datetime import timedelta

import django_rq
from rq import Retry
from rq.job import JobStatus

logger = logging.getLogger(__name__)

LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def job_id_for(generation_id: int) -> str:
    return f"generation-{generation_id}"


def run_generation(generation_id: int) -> None:
    from reviewapp.briefs.execution import run_generation as run

    run(generation_id)


def cancel_prompt(backend: str, prompt_id: str) -> str:
    """Remove or interrupt (targeted) one prompt on its backend."""
    from reviewapp.briefs import comfy

    with comfy.client_for(backend) as client:
        return client.cancel(prompt_id)


def enqueue_generation(
    generation_id: int,
    queue_name: str = "default",
    *,
    delay: float | None = None,
    at_front: bool = False,
    new: bool = False,
):
    """Put the generation's job on its queue, unless a live job for it is there already.

    Call it on commit (services do), so a worker never looks for a row that is not
    visible yet.
    """
    queue = django_rq.get_queue(queue_name)
    job_id = job_id_for(generation_id)
    # A generation created in this transaction has no job yet (`new`): skip the lookup.
    existing = None if new else queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=False) in LIVE:
        logger.info("job %s is already %s; not enqueued again", job_id, existing.get_status())
        return existing
    from django.conf import settings

    from reviewapp.briefs.execution import RETRY_DELAYS

    kwargs = {
        "job_id": job_id,
        # Temporary failures come back as RetryLater: RQ runs the job again after these
        # intervals; the row's attempt count decides when to give up.
        "retry": Retry(max=settings.GENERATION_MAX_ATTEMPTS, interval=list(RETRY_DELAYS)),
        "at_front": at_front,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"run generation {generation_id}",
    }
    if delay:
        del kwargs["at_front"]
        return queue.enqueue_in(timedelta(seconds=delay), run_generation, generation_id, **kwargs)
    return queue.enqueue(run_generation, generation_id, **kwargs)


def enqueue_cancel(backend: str, prompt_id: str, queue_name: str = "default"):
    return django_rq.get_queue(queue_name).enqueue(
        cancel_prompt, backend, prompt_id, job_id=f"cancel-{prompt_id}", result_ttl=600
    )


def drop_job(generation_id: int, queue_name: str = "default") -> None:
    """Take a waiting job of the generation off its queue.

    A job already running is left alone: it ends by itself when the backend reports the
    prompt interrupted, and then finds the row cancelled.
    """
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    queue = django_rq.get_queue(queue_name)
    job = queue.fetch_job(job_id_for(generation_id))
    if job is None or job.get_status() == JobStatus.STARTED:
        return
    try:
        job.cancel()
    except (InvalidJobOperation, NoSuchJobError):
        logger.info("job %s finished before it could be dropped", job.id)
