"""What a worker does for one generation: claim, submit, follow, ingest.

The database row is the ledger. A job may run twice (a worker died, Redis lost the job and
the reconciler enqueued it again, a retry, or another worker submitted it ahead): every step
finds where an earlier one got to instead of doing it again.

- The prompt_id is chosen and stored before the POST. A run that finds one on the row asks
  that backend about it first (/queue, /history) and submits only when the backend does not
  have it; submission holds a per-generation lock (``dispatch.submission``), so a run and a
  submit-ahead of the same row never both POST.
- Outputs are stored under their content hash and recorded per (generation, node, index), so
  ingesting twice stores nothing twice (``ingest``).
- While this run's prompt executes, ``dispatch.submit_ahead`` puts the pool's next waiting
  generation on a backend, so the backend never waits for our ingest.

Everything here is plain Python called by the RQ job; tests call it directly.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from comfybridge.errors import ComfyError, ParamsInvalid, PromptLost, RunTimeout
from comfybridge.pool import NoBackendReady
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends, dispatch, failures, ingest, submit
from reviewapp.briefs.worker.liveness import Heartbeat, ProgressWriter
from reviewapp.briefs.worker.submit import Run
from reviewapp.lib import images

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """Raised out of the job after the row went back to queued, so that RQ schedules
    the same job again after its retry interval."""


def _release_connections() -> None:
    # Between jobs a long-lived worker drops broken or expired connections. Never from
    # inside a transaction (a caller's, or a test's): that would close it under them.
    if not connection.in_atomic_block:
        close_old_connections()


def run_generation(generation_id: int) -> None:
    """Run (or resume) one generation. Raises RetryLater when a temporary failure sent
    it back to the queue: the RQ job then retries after its interval."""
    _release_connections()
    try:
        run = claim(generation_id)
        if run is None:
            return
        requeued = None
        backend = run.generation.backend
        with Heartbeat(generation_id, settings.HEARTBEAT_INTERVAL_S):
            try:
                execute(run)
            except ComfyError as exc:
                # The pool decides what counts: backoff for a backend's trouble, a fresh
                # look at its models when it refused what they said it could run.
                backends.report_failure(backend, exc)
                if exc.retryable:
                    backends.drop_shared_client(backend)
                requeued = exc if failures.handle_failure(generation_id, exc) else None
            except images.BadImage as exc:
                # Not retried: the same graph would return the same image.
                failures.fail(generation_id, f"the backend returned an image we refuse: {exc}")
            else:
                backends.report_success(backend)
        if requeued is not None:
            raise RetryLater(f"generation {generation_id}: {requeued}")
    finally:
        _release_connections()


def claim(generation_id: int) -> Run | None:
    """Lock the row and decide what this run does: start, resume, wait, or nothing."""
    with transaction.atomic():
        generation = failures.lock(generation_id)
        if generation is None:
            logger.warning("generation %s is gone; nothing to run", generation_id)
            return None
        if generation.status not in Generation.ACTIVE:
            logger.info("%s is %s; nothing to run", generation, generation.status)
            return None
        if failures.expire_locked(generation, timezone.now()):
            return None
        version = generation.brief.workflow_version
        contract = version.contract()
        try:
            # Checked at the form already; checked again here because the schema is
            # what bounds the cost, whatever path the row came by.
            generation.params = contract.validate(generation.params)
        except ParamsInvalid as exc:
            failures.fail_locked(generation, f"parameters no longer valid: {exc}")
            return None
        graph = submit.patched_graph(generation)
        run_timeout_s = version.workflow.run_timeout_s
        if generation.status in (Generation.Status.SUBMITTING, Generation.Status.RUNNING):
            # Submitted ahead by another run, or a worker died (or Redis forgot the job)
            # while this row was in flight: follow the prompt the row names (running: its
            # POST went through; submitting: it may not have, so look first).
            mode = "follow" if generation.status == Generation.Status.RUNNING else "resume"
            generation.heartbeat_at = timezone.now()
            generation.save(update_fields=["heartbeat_at"])
        elif generation.prompt_id and backends.serves(generation.pool, generation.backend):
            # Requeued after a temporary failure: the prompt may still exist there.
            mode = "resume"
            generation.mark_submitting(
                prompt_id=generation.prompt_id,
                backend=generation.backend,
                run_timeout_s=run_timeout_s,
            )
            generation.save()
        else:
            try:
                backend = backends.choose(generation.pool, graph)
            except NoBackendReady as exc:
                # Stays queued, saying why; the reconciler enqueues it again.
                generation.mark_waiting(exc.summary())
                generation.save(update_fields=["waiting_reason", "updated_at"])
                logger.info("%s waits: %s", generation, exc)
                return None
            mode = "new"
            generation.mark_submitting(
                prompt_id=uuid.uuid4(), backend=backend, run_timeout_s=run_timeout_s
            )
            generation.save()
    return submit.prepare(generation, graph, mode)


def _wait(run: Run):
    generation = run.generation
    remaining = (generation.run_deadline - timezone.now()).total_seconds()
    return run.client.wait(
        str(generation.prompt_id),
        timeout=max(1.0, min(remaining, settings.GENERATION_RUN_TIMEOUT)),
        on_progress=ProgressWriter(generation.pk, run.graph),
        contract=run.contract,
    )


def execute(run: Run) -> None:
    generation, client = run.generation, run.client
    prompt_id = str(generation.prompt_id)
    where = submit.submit(run)
    if where is not None:
        logger.info(
            "%s: prompt %s is %s on %s; following it",
            generation,
            prompt_id,
            where,
            generation.backend,
        )
    # While this prompt runs, keep the pool's backends fed with what waits behind it.
    dispatch.submit_ahead(generation.pool)

    try:
        try:
            result = _wait(run)
        except PromptLost:
            if run.mode != "follow":
                raise
            # A running row's prompt the backend forgot (it restarted): send it again now,
            # as a resumed run that looked it up first would have.
            logger.info(
                "%s: prompt %s was lost on %s; sending it again",
                generation,
                prompt_id,
                generation.backend,
            )
            run.mode = "resume"
            submit.submit(run)
            result = _wait(run)
    except RunTimeout:
        if timezone.now() < generation.run_deadline:
            raise
        # Stopped now, by this worker that holds a client to the backend anyway.
        try:
            client.cancel(prompt_id)
        except ComfyError as exc:
            logger.info("could not interrupt %s on %s: %s", prompt_id, generation.backend, exc)
        failures.expire(generation.pk, timezone.now(), interrupt=False)
        return
    ingest.ingest(client, generation.pk, result)
    try:
        client.delete_history(prompt_id)
    except ComfyError:
        logger.info("could not delete history of %s; the backend keeps it", prompt_id)
