"""Keeps every backend's ComfyUI queue from draining while work waits.

A worker that only submits its own job's prompt leaves the backend idle between prompts: it
follows the run, downloads, stores, writes three transactions, and only then takes the next
job. So once its own prompt is on a backend, a run calls ``submit_ahead``: it takes the
pool's next waiting generation (interactive work before released campaign cells, then
oldest first) and puts it on a backend whose queue has room (at most one
running plus ``WORKER_SUBMIT_AHEAD`` pending), choosing it as the job would. That row's own
job, when a worker takes it, finds the prompt there and follows it; meanwhile the backend has
been running it while we ingested the previous one.

Every guarantee of a run holds: the row is claimed under its lock and names its prompt id and
backend before the POST; the POST holds the same per-generation lock as the job's (so the two
never both send it); a failure to POST leaves the row submitting, and its job then submits it
itself. Only rows never submitted are taken (a row with a prompt id resumes on its backend
first), and none that waits for a capable backend (the reconciler retries those).
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from comfybridge.errors import ComfyError, ParamsInvalid
from comfybridge.pool import NoBackendReady
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends, failures, submit

logger = logging.getLogger(__name__)

# Rows looked at per call beyond those placed: one that cannot go ahead (invalid by now,
# overdue) does not stop the next from being placed, nor make a call scan the whole line.
EXTRA_LOOKS = 3


def submit_ahead(pool: str) -> list[int]:
    """Put up to ``WORKER_SUBMIT_AHEAD`` waiting generations of ``pool`` on backends with
    room. Returns their ids. Never raises for a backend's or a row's trouble."""
    depth = settings.WORKER_SUBMIT_AHEAD
    placed: list[int] = []
    for _ in range(depth + EXTRA_LOOKS if depth > 0 else 0):
        if len(placed) >= depth:
            break
        try:
            run = _claim_next(pool, depth)
        except NoBackendReady:
            break  # no backend has room (or can run the oldest): nothing more now
        except Exception:
            # Whatever goes wrong ahead must not fail the run that is doing us the favour.
            logger.exception("could not claim a generation of pool %s to submit ahead", pool)
            break
        if run is None:
            break
        if run is False:
            continue
        try:
            submit.submit(run)
        except Exception as exc:
            # The row says submitting with its prompt id; its own job looks it up and
            # sends it if the backend does not have it (and fails it if it cannot).
            logger.info("submitting %s ahead failed (%s); its job will", run.generation, exc)
            if isinstance(exc, ComfyError):
                backends.report_failure(run.generation.backend, exc)
            break
        placed.append(run.generation.pk)
    return placed


# Interactive work (no lane) goes ahead of campaign cells the scheduler released.
INTERACTIVE_FIRST = Case(When(lane="", then=Value(0)), default=Value(1))


def _claim_next(pool: str, depth: int):
    """The next waiting row of ``pool`` (interactive work first, then oldest), marked
    submitting to a backend with room: a ``Run``; None when nothing waits; False when
    the row looked at could not go ahead.

    The backend is chosen before the row is locked (choosing asks the backends, and no
    transaction should wait on HTTP); the claim then only succeeds if the row is still
    untouched, so a job that took it meanwhile keeps it.
    """
    waiting = Generation.objects.filter(
        pool=pool, status=Generation.Status.QUEUED, prompt_id=None, waiting_reason=""
    )
    peek = (
        waiting.select_related("brief__workflow_version__workflow")
        .order_by(INTERACTIVE_FIRST, "created_at", "pk")
        .first()
    )
    if peek is None:
        return None
    now = timezone.now()
    if failures.overdue(peek, now):
        failures.expire(peek.pk, now)
        return False
    try:
        peek.params = peek.brief.workflow_version.contract().validate(peek.params)
    except ParamsInvalid:
        return False  # its own job fails it with the reason
    graph = submit.patched_graph(peek)
    backend = backends.choose(pool, graph, max_queue=depth)
    with transaction.atomic():
        generation = failures.lock(peek.pk)
        if generation is None or not waiting.filter(pk=peek.pk).exists():
            return False
        generation.params = peek.params
        generation.mark_submitting(
            prompt_id=uuid.uuid4(),
            backend=backend,
            run_timeout_s=generation.brief.workflow_version.workflow.run_timeout_s,
        )
        generation.save()
    return submit.prepare(generation, graph, "new")
