"""What a worker does for one generation: submit, follow, ingest, hand over to review.

The database row is the ledger. A job may run twice (a worker died, Redis lost the job
and the reconciler enqueued it again, a retry): every step is written so that a second
run finds where the first one got to instead of doing it again.

- The prompt_id is chosen and stored before the POST. A run that finds one on the row
  asks that backend about it first (/queue, /history) and submits only when the backend
  does not have it.
- Outputs are stored under their content hash and recorded per (generation, node, index),
  so ingesting twice stores nothing twice; the row moves to awaiting_review only after
  its assets are stored.

Everything here is plain Python called by the RQ job; tests call it directly.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from comfybridge.client import ComfyClient, OutputImage, Progress
from comfybridge.contract import Contract, checksum, stamp_save_prefixes
from comfybridge.errors import ComfyError, ParamsInvalid, RunTimeout
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs import comfy
from reviewapp.briefs.models import Asset, Generation
from reviewapp.lib import imagemeta, images

logger = logging.getLogger(__name__)

# Waits between attempts when failures are temporary (seconds); how many attempts is
# settings.GENERATION_MAX_ATTEMPTS. RQ schedules them (jobs are enqueued with a Retry).
RETRY_DELAYS = (2, 10, 30, 60)


class RetryLater(Exception):
    """Raised out of the job after the row went back to queued, so that RQ schedules
    the same job again after its retry interval."""


PROGRESS_WRITE_INTERVAL = 0.25


@dataclass
class Run:
    generation: Generation
    contract: Contract
    graph: dict
    client: ComfyClient
    # "new": submit; "resume": the row already names a prompt on this backend.
    mode: str


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
        run = _claim(generation_id)
        if run is None:
            return
        requeued = None
        with Heartbeat(generation_id, settings.HEARTBEAT_INTERVAL_S):
            try:
                _execute(run)
            except ComfyError as exc:
                if exc.retryable:
                    comfy.report_failure(run.generation.backend, exc)
                    comfy.drop_shared_client(run.generation.backend)
                requeued = exc if _handle_failure(generation_id, exc) else None
            except images.BadImage as exc:
                # Not retried: the same graph would return the same image.
                _handle_failure(
                    generation_id, ComfyError(f"the backend returned an image we refuse: {exc}")
                )
            else:
                comfy.report_success(run.generation.backend)
        if requeued is not None:
            raise RetryLater(f"generation {generation_id}: {requeued}")
    finally:
        _release_connections()


def _claim(generation_id: int) -> Run | None:
    """Lock the row and decide what this run does: start, resume, or nothing."""
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("brief__workflow_version__workflow")
            .filter(pk=generation_id)
            .first()
        )
        if generation is None:
            logger.warning("generation %s is gone; nothing to run", generation_id)
            return None
        if generation.status not in Generation.ACTIVE:
            logger.info("%s is %s; nothing to run", generation, generation.status)
            return None
        version = generation.brief.workflow_version
        workflow = version.workflow
        now = timezone.now()
        if generation.run_deadline and now > generation.run_deadline:
            _fail_locked(generation, f"did not finish within {workflow.run_timeout_s} s")
            _interrupt_later(generation)
            return None
        if (
            generation.status == Generation.Status.QUEUED
            and generation.queue_deadline
            and now > generation.queue_deadline
        ):
            _fail_locked(
                generation, f"waited in the queue longer than {workflow.queue_timeout_s} s"
            )
            return None
        contract = version.contract()
        try:
            # Checked at the form already; checked again here because the schema is
            # what bounds the cost, whatever path the row came by.
            generation.params = contract.validate(generation.params)
        except ParamsInvalid as exc:
            _fail_locked(generation, f"parameters no longer valid: {exc}")
            return None

        if generation.status in (Generation.Status.SUBMITTING, Generation.Status.RUNNING):
            # A worker died (or Redis forgot the job) while this row was in flight.
            mode = "resume"
            backend = generation.backend
            generation.heartbeat_at = now
            generation.save(update_fields=["heartbeat_at"])
        elif generation.prompt_id and generation.backend in comfy.backend_urls():
            # Requeued after a temporary failure: the prompt may still exist there.
            mode = "resume"
            backend = generation.backend
            generation.mark_submitting(
                prompt_id=generation.prompt_id,
                backend=backend,
                run_timeout_s=workflow.run_timeout_s,
            )
            generation.save()
        else:
            mode = "new"
            # The patched graph: a parameter may choose the checkpoint the backend needs.
            backend = comfy.choose_backend(contract.patch(version.graph, generation.params))
            generation.mark_submitting(
                prompt_id=uuid.uuid4(), backend=backend, run_timeout_s=workflow.run_timeout_s
            )
            generation.save()
    graph = stamp_save_prefixes(
        contract.patch(version.graph, generation.params), generation.prompt_id.hex[:12]
    )
    return Run(generation, contract, graph, comfy.shared_client(backend), mode)


def _execute(run: Run) -> None:
    generation, client = run.generation, run.client
    prompt_id = str(generation.prompt_id)
    where = client.locate(prompt_id) if run.mode == "resume" else None
    if where is None:
        # Not on the backend (never sent, or lost in a restart): send it. The id is
        # ours, so a timeout on the POST is resolved by looking it up, not by resending.
        graph = _with_uploaded_inputs(run)
        fingerprint, comfyui_version = backend_fingerprint(client, graph)
        client.submit(graph, prompt_id=prompt_id, contract=run.contract)
    else:
        logger.info("%s: prompt %s is %s on %s; following it", generation, prompt_id, where,
                    generation.backend)  # fmt: skip
        fingerprint, comfyui_version = backend_fingerprint(client, run.graph)
    _mark_running(generation, fingerprint, comfyui_version)

    remaining = (generation.run_deadline - timezone.now()).total_seconds()
    try:
        result = client.wait(
            prompt_id,
            timeout=max(1.0, min(remaining, settings.GENERATION_RUN_TIMEOUT)),
            on_progress=ProgressWriter(generation.pk, run.graph),
            contract=run.contract,
        )
    except RunTimeout:
        if timezone.now() < generation.run_deadline:
            raise
        client.cancel(prompt_id)
        _fail(generation.pk, f"did not finish within {_workflow(generation).run_timeout_s} s")
        return
    # Only what SaveImage wrote is reviewed; PreviewImage temp files are not deliverables.
    outputs = result.saved
    if not outputs:
        raise ComfyError("the workflow finished without producing any image")
    # Every output is fetched and checked before any is stored: an image refused (too many
    # pixels, unreadable) fails the generation with nothing of it half-stored.
    fetched = [_fetch_output(client, output) for output in outputs]
    stored = [_store_output(output) for output in fetched]
    _attach_assets(generation.pk, outputs, stored)
    try:
        client.delete_history(prompt_id)
    except ComfyError:
        logger.info("could not delete history of %s; the backend keeps it", prompt_id)


def _with_uploaded_inputs(run: Run) -> dict:
    """Upload image parameters (content-hash names, so a re-upload is harmless) and
    return the graph with their backend names bound."""
    names = run.contract.image_properties()
    if not names:
        return run.graph
    params = dict(run.generation.params)
    for name in names:
        if params.get(name):
            with default_storage.open(params[name], "rb") as fh:
                data = fh.read()
            params[name] = run.client.upload_image(data, params[name].rsplit("/", 1)[-1]).load_name
    patched = run.contract.patch(run.generation.brief.workflow_version.graph, params)
    return stamp_save_prefixes(patched, run.generation.prompt_id.hex[:12])


def _mark_running(generation: Generation, fingerprint: str, comfyui_version: str) -> None:
    with transaction.atomic():
        locked = Generation.objects.select_for_update(of=("self",)).get(pk=generation.pk)
        if locked.status == Generation.Status.RUNNING:
            return  # resumed a run that was already marked
        locked.mark_running()
        locked.backend_fingerprint = fingerprint
        locked.comfyui_version = comfyui_version[:32]
        locked.save()
        record(
            actions.GENERATION_STARTED,
            actor=None,
            target=locked,
            workflow_slug=_workflow(locked).slug,
            changes={"backend": locked.backend, "prompt_id": str(locked.prompt_id),
                     "attempt": locked.attempt},
        )  # fmt: skip


def _attach_assets(generation_id: int, outputs: list[OutputImage], stored: list) -> None:
    with transaction.atomic():
        locked = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("brief__workflow_version__workflow")
            .get(pk=generation_id)
        )
        if locked.status != Generation.Status.RUNNING:
            logger.info("%s became %s while running; outputs not attached", locked, locked.status)
            return
        for output, stored_output in zip(outputs, stored, strict=True):
            Asset.objects.get_or_create(
                generation=locked,
                node_id=output.node_id,
                index=output.index,
                defaults=stored_output.asset_fields(),
            )
        locked.mark_awaiting_review()
        locked.save()
        record(
            actions.GENERATION_AWAITING_REVIEW,
            actor=None,
            target=locked,
            workflow_slug=_workflow(locked).slug,
            changes={"assets": len(stored)},
        )


def _workflow(generation: Generation):
    return generation.brief.workflow_version.workflow


# backend URL -> (fetched at, object_info, ComfyUI version). Per process: a worker runs
# many jobs against the same few backends, and their node catalogue rarely changes.
_BACKEND_INFO: dict[str, tuple[float, dict, str]] = {}
BACKEND_INFO_TTL = 300.0


def backend_fingerprint(client: ComfyClient, graph: dict) -> tuple[str, str]:
    """sha256 over the backend's object_info entries of the classes this graph uses
    and its ComfyUI version: two runs with the same fingerprint ran the same nodes."""
    cached = _BACKEND_INFO.get(client.base_url)
    if cached is None or time.monotonic() - cached[0] > BACKEND_INFO_TTL:
        stats = client.system_stats()
        version = str(stats.get("system", {}).get("comfyui_version", ""))
        cached = (time.monotonic(), client.object_info(), version)
        _BACKEND_INFO[client.base_url] = cached
    _, object_info, version = cached
    classes = sorted({node.get("class_type", "") for node in graph.values()})
    payload = {"comfyui_version": version, "nodes": {c: object_info.get(c) for c in classes}}
    return checksum(payload), version


@dataclass
class FetchedOutput:
    """An output downloaded and checked, with what will be stored of it."""

    data: bytes
    info: images.ImageInfo
    name: str
    delivery: bytes
    delivery_sha256: str
    delivery_name: str
    thumb_name: str
    thumbnail: bytes | None  # None: already stored


@dataclass
class StoredOutput:
    fetched: FetchedOutput
    name: str
    delivery_name: str
    thumb_name: str

    def asset_fields(self) -> dict:
        info = self.fetched.info
        return {
            "file": self.name,
            "thumbnail": self.thumb_name,
            "sha256": info.sha256,
            "delivery_file": self.delivery_name,
            "delivery_sha256": self.fetched.delivery_sha256,
            "width": info.width,
            "height": info.height,
            "size": len(self.fetched.data),
            "content_type": info.content_type,
        }


def _fetch_output(client: ComfyClient, output: OutputImage) -> FetchedOutput:
    """Download one output and check it (pixel limit from the header, then its structure);
    make its delivery copy and thumbnail. Raises BadImage naming the output."""
    data = client.download(output, max_bytes=settings.ASSET_MAX_BYTES)
    limit = settings.IMAGE_MAX_PIXELS
    try:
        info = images.inspect(data, max_pixels=limit)
        delivery = imagemeta.strip_metadata(data)
        ext = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}.get(info.format, "bin")
        delivery_sha256 = hashlib.sha256(delivery).hexdigest()
        # Content-addressed names: the same bytes are stored once, whatever re-runs happen.
        thumb_name = f"thumbs/{info.sha256[:2]}/{info.sha256}.webp"
        thumb = None
        if not default_storage.exists(thumb_name):
            thumb = images.thumbnail(data, settings.THUMBNAIL_SIZE, max_pixels=limit)
    except images.BadImage as exc:
        raise images.BadImage(f"{output.filename} (node {output.node_id}): {exc}") from None
    return FetchedOutput(
        data=data,
        info=info,
        name=f"assets/{info.sha256[:2]}/{info.sha256}.{ext}",
        delivery=delivery,
        delivery_sha256=delivery_sha256,
        delivery_name=f"assets/{delivery_sha256[:2]}/{delivery_sha256}.{ext}",
        thumb_name=thumb_name,
        thumbnail=thumb,
    )


def _store_output(fetched: FetchedOutput) -> StoredOutput:
    name = _save_once(fetched.name, fetched.data)
    delivery_name = _save_once(fetched.delivery_name, fetched.delivery)
    thumb_name = fetched.thumb_name
    if fetched.thumbnail is not None:
        thumb_name = _save_once(thumb_name, fetched.thumbnail)
    return StoredOutput(fetched, name, delivery_name, thumb_name)


def _save_once(name: str, data: bytes) -> str:
    if default_storage.exists(name):
        return name
    return default_storage.save(name, ContentFile(data))


class ProgressWriter:
    """Writes progress onto the row, at most a few times a second."""

    def __init__(self, generation_id: int, graph: dict):
        self.generation_id = generation_id
        self.classes = {node_id: node.get("class_type", "") for node_id, node in graph.items()}
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        done = progress.fraction >= 1.0
        if not done and now - self._last < PROGRESS_WRITE_INTERVAL:
            return
        self._last = now
        text = ""
        if progress.node:
            text = self.classes.get(progress.node) or f"node {progress.node}"
            if progress.max > 1:
                text += f" step {progress.value}/{progress.max}"
        Generation.objects.filter(pk=self.generation_id, status=Generation.Status.RUNNING).update(
            progress=max(0.0, min(1.0, progress.fraction)),
            progress_text=text[:200],
            heartbeat_at=timezone.now(),
        )


class Heartbeat:
    """Touches the row's heartbeat while the job runs, from a thread of its own (the
    job may block for minutes in one call), so the reconciler can tell a live worker
    from a dead one."""

    def __init__(self, generation_id: int, interval: float):
        self.generation_id = generation_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def _beat(self):
        while not self._stop.wait(self.interval):
            try:
                Generation.objects.filter(
                    pk=self.generation_id, status__in=Generation.ACTIVE
                ).update(heartbeat_at=timezone.now())
            except Exception:  # a passing database error must not kill the job
                logger.exception("heartbeat of generation %s failed", self.generation_id)
            finally:
                close_old_connections()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _fail_locked(generation: Generation, message: str) -> None:
    generation.mark_failed(message)
    generation.save()
    record(
        actions.GENERATION_FAILED,
        actor=None,
        target=generation,
        workflow_slug=_workflow(generation).slug,
        changes={"error": message},
    )


def _interrupt_later(generation: Generation) -> None:
    """Ask the backend to stop (targeted) this prompt, once the transaction commits."""
    if not generation.prompt_id or not generation.backend:
        return
    from reviewapp.briefs.jobs import enqueue_cancel

    backend, prompt_id = generation.backend, str(generation.prompt_id)
    transaction.on_commit(lambda: enqueue_cancel(backend, prompt_id), robust=True)


def _handle_failure(generation_id: int, exc: ComfyError) -> bool:
    """Send the generation back to the queue (True) or fail it with the reason."""
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("brief__workflow_version__workflow")
            .get(pk=generation_id)
        )
        if generation.status not in Generation.ACTIVE:
            return False
        slug = _workflow(generation).slug
        if exc.retryable and generation.attempt < settings.GENERATION_MAX_ATTEMPTS:
            delay = RETRY_DELAYS[min(generation.attempt - 1, len(RETRY_DELAYS) - 1)]
            generation.mark_requeued(f"attempt {generation.attempt} failed: {exc}; retrying")
            generation.save()
            record(
                actions.GENERATION_RETRY_SCHEDULED,
                actor=None,
                target=generation,
                workflow_slug=slug,
                changes={"error": str(exc), "delay_s": delay, "attempt": generation.attempt},
            )
            return True
        if exc.retryable:
            message = f"gave up after {generation.attempt} attempts: {exc}"
        else:
            message = str(exc)
        _fail_locked(generation, message)
        return False


def _fail(generation_id: int, message: str) -> None:
    _handle_failure(generation_id, ComfyError(message))
