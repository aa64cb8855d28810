"""Putting one generation's prompt on its backend, shared by a run and a submit-ahead.

The row already names the prompt id and the backend (stored before any POST). ``submit``
holds a per-generation lock in Redis while it asks the backend about that id and POSTs it, so
the job of a generation and another worker submitting it ahead never both send it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from comfybridge.client import ComfyClient
from comfybridge.contract import Contract, stamp_save_prefixes
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends

logger = logging.getLogger(__name__)

# A submission's lock lives this long unless its holder renews it: a holder that died
# (SIGKILL, a lost machine) while submitting ahead lets go within it, so the generation's
# own job does not wait for a dead process. A live holder renews it every
# SUBMIT_LOCK_RENEW_S for as long as it works, however slow the backend.
SUBMIT_LOCK_TTL_S = 10.0
SUBMIT_LOCK_RENEW_S = 3.0
# Longest a submission waits for another one's (a live holder on a slow backend).
SUBMIT_LOCK_WAIT_S = 65.0


@dataclass
class Run:
    generation: Generation
    contract: Contract
    # The graph patched with the parameters (once, at the claim) and its SaveImage
    # prefixes stamped with this prompt's nonce; uploads bind their backend names into it.
    graph: dict
    client: ComfyClient
    # "new": submit; "resume": the row already names a prompt, look for it first;
    # "follow": the row is running (its POST went through), follow it.
    mode: str


def patched_graph(generation: Generation) -> dict:
    """The version's graph with the row's (validated) parameters written in: the one patch
    of a run. Routing reads it too, since a parameter may choose the checkpoint."""
    version = generation.brief.workflow_version
    return version.contract().patch(version.graph, generation.params)


def prepare(generation: Generation, graph: dict, mode: str) -> Run:
    """The run of a row that names its prompt id and backend, from its ``patched_graph``."""
    return Run(
        generation,
        generation.brief.workflow_version.contract(),
        stamp_save_prefixes(graph, generation.prompt_id.hex[:12]),
        backends.shared_client(generation.backend),
        mode,
    )


def _lock_key(generation_id: int) -> str:
    return f"reviewapp:submit:{generation_id}"


@contextlib.contextmanager
def submission_lock(generation_id: int) -> Iterator[None]:
    """Held while one process asks the backend about the generation's prompt and POSTs
    it. Raises redis' LockError when another holds it past SUBMIT_LOCK_WAIT_S."""
    lock = backends.redis().lock(
        _lock_key(generation_id),
        timeout=SUBMIT_LOCK_TTL_S,
        blocking_timeout=SUBMIT_LOCK_WAIT_S,
        thread_local=False,  # renewed from the thread below
    )
    with lock:
        stop = threading.Event()

        def renew():
            while not stop.wait(SUBMIT_LOCK_RENEW_S):
                try:
                    lock.extend(SUBMIT_LOCK_TTL_S, replace_ttl=True)
                except Exception:
                    # Lost (Redis restarted, or it expired under a frozen process): the
                    # submission goes on; its prompt id is on the row either way.
                    logger.warning("submission lock of generation %s lost", generation_id)
                    return

        renewer = threading.Thread(target=renew, name=f"submit-lock-{generation_id}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=1.0)


def break_dead_holders_lock(generation_id: int) -> None:
    """The reconciler found the job's worker dead (its heartbeat thread, which beats
    while the lock is held, went quiet): a lock it held would otherwise keep the next
    job of this generation waiting until SUBMIT_LOCK_TTL_S ran out."""
    backends.redis().delete(_lock_key(generation_id))


def submit(run: Run) -> str | None:
    """Make sure the backend has the run's prompt: look it up (resume) or POST it, then mark
    the row running. Returns where the prompt was found, or None when it was sent now."""
    generation, client = run.generation, run.client
    prompt_id = str(generation.prompt_id)
    if run.mode == "follow":
        # Marked running after its POST went through: the backend has it, or lost it in a
        # restart, which following it finds out (PromptLost, retried like any other).
        return "submitted"
    with submission_lock(generation.pk):
        where = client.locate(prompt_id) if run.mode == "resume" else None
        if where is None:
            # Not on the backend (never sent, or lost in a restart): send it. The id is
            # ours, so a timeout on the POST is resolved by looking it up, not by resending.
            bind_uploads(run)
            client.submit(run.graph, prompt_id=prompt_id, contract=run.contract)
            backends.note_submitted(generation.pool, generation.backend, run.graph)
        if not mark_running(generation, run.graph, client):
            # Cancelled between the claim and the POST: the cancel job may have looked for
            # the prompt before it existed, so stop it here too (targeted).
            client.cancel(prompt_id)
    return where


def bind_uploads(run: Run) -> None:
    """Upload image parameters (content-hash names, so a re-upload is harmless) and bind
    their backend names into the run's graph."""
    uploaded = {}
    for name in run.contract.image_properties():
        stored = run.generation.params.get(name)
        if stored:
            with default_storage.open(stored, "rb") as fh:
                data = fh.read()
            uploaded[name] = run.client.upload_image(data, stored.rsplit("/", 1)[-1]).load_name
    if uploaded:
        run.graph = run.contract.patch(run.graph, uploaded)


def mark_running(generation: Generation, graph: dict, client: ComfyClient) -> bool:
    """The backend has the prompt: record what runs it (fingerprint) and audit the start.
    False when the row is no longer active (cancelled or failed meanwhile)."""
    fingerprint, comfyui_version = backends.backend_fingerprint(client, graph)
    with transaction.atomic():
        locked = Generation.objects.for_update().get(pk=generation.pk)
        if locked.status == Generation.Status.RUNNING:
            return True  # a resumed run, marked already
        if locked.status != Generation.Status.SUBMITTING:
            return False
        locked.mark_running()
        locked.backend_fingerprint = fingerprint
        locked.comfyui_version = comfyui_version[:32]
        locked.save()
        record(
            actions.GENERATION_STARTED,
            actor=None,
            target=locked,
            workflow_slug=locked.brief.workflow_version.workflow.slug,
            changes={
                "backend": locked.backend,
                "prompt_id": str(locked.prompt_id),
                "attempt": locked.attempt,
            },
        )
    return True
