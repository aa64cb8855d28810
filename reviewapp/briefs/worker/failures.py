"""The one path by which a generation fails, is sent back to the queue, or passes a deadline.

The job (before and after it runs) and the reconciler all come here, so the rule for "too
long in the queue", "too long on the backend", "retry or give up" and what gets audited is
written once.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction

from comfybridge.errors import ComfyError
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker.enqueue import RETRY_DELAYS, enqueue_cancel


def lock(generation_id: int) -> Generation | None:
    """The row, locked for this transaction, or None if it is gone."""
    return Generation.objects.for_update().filter(pk=generation_id).first()


def overdue(generation: Generation, now: datetime) -> str | None:
    """Why ``generation`` is past one of its deadlines, or None if it is not."""
    workflow = generation.brief.workflow_version.workflow
    if generation.run_deadline is not None and now > generation.run_deadline:
        return f"did not finish within {workflow.run_timeout_s} s"
    if (
        generation.status == Generation.Status.QUEUED
        and generation.queue_deadline is not None
        and now > generation.queue_deadline
    ):
        return f"waited in the queue longer than {workflow.queue_timeout_s} s"
    return None


def fail_locked(
    generation: Generation, message: str, *, interrupt: bool = False, by: str | None = None
) -> None:
    """Fail a locked, active row with ``message`` and audit it. ``interrupt``: its prompt
    may still be on the backend, so ask the backend to stop it once this commits."""
    generation.mark_failed(message)
    generation.save()
    changes = {"error": message}
    if by:
        changes["by"] = by
    record(
        actions.GENERATION_FAILED,
        actor=None,
        target=generation,
        workflow_slug=generation.brief.workflow_version.workflow.slug,
        changes=changes,
    )
    if interrupt and generation.prompt_id and generation.backend:
        backend, prompt_id, pool = generation.backend, str(generation.prompt_id), generation.pool
        transaction.on_commit(lambda: enqueue_cancel(backend, prompt_id, pool), robust=True)


def expire_locked(
    generation: Generation, now: datetime, *, by: str | None = None, interrupt: bool = True
) -> bool:
    """Fail a locked row that is past a deadline, and (``interrupt``) have its prompt
    stopped on the backend once this commits. True if it was past one."""
    reason = overdue(generation, now)
    if reason is None or generation.status not in Generation.ACTIVE:
        return False
    fail_locked(generation, reason, interrupt=interrupt, by=by)
    return True


def expire(
    generation_id: int, now: datetime, *, by: str | None = None, interrupt: bool = True
) -> bool:
    with transaction.atomic():
        generation = lock(generation_id)
        return generation is not None and expire_locked(generation, now, by=by, interrupt=interrupt)


def handle_failure(generation_id: int, exc: ComfyError) -> bool:
    """Send the generation back to the queue (True) or fail it with the reason (False)."""
    with transaction.atomic():
        generation = lock(generation_id)
        if generation is None or generation.status not in Generation.ACTIVE:
            return False
        if exc.retryable and generation.attempt < settings.GENERATION_MAX_ATTEMPTS:
            delay = RETRY_DELAYS[min(generation.attempt - 1, len(RETRY_DELAYS) - 1)]
            generation.mark_requeued(f"attempt {generation.attempt} failed: {exc}; retrying")
            generation.save()
            record(
                actions.GENERATION_RETRY_SCHEDULED,
                actor=None,
                target=generation,
                workflow_slug=generation.brief.workflow_version.workflow.slug,
                changes={"error": str(exc), "delay_s": delay, "attempt": generation.attempt},
            )
            return True
        if exc.retryable:
            message = f"gave up after {generation.attempt} attempts: {exc}"
        else:
            message = str(exc)
        fail_locked(generation, message)
        return False


def fail(generation_id: int, message: str) -> None:
    """Fail the generation (not retried) with ``message``."""
    handle_failure(generation_id, ComfyError(message))
