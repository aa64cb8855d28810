"""What a worker does for one generation: submit, follow, ingest, hand over to review.

Everything here is plain Python called by the RQ job; tests call it directly.
"""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from comfybridge.client import ComfyClient, OutputImage, Progress
from comfybridge.contract import Contract, checksum, stamp_save_prefixes
from comfybridge.errors import ComfyError, ParamsInvalid
from reviewapp.audit.services import record
from reviewapp.briefs.comfy import choose_backend, client_for
from reviewapp.briefs.models import Asset, Generation
from reviewapp.lib import images

logger = logging.getLogger(__name__)

# How many times a generation is tried when the failure is temporary.
MAX_ATTEMPTS = 3
RETRY_DELAYS = (5, 30)
PROGRESS_WRITE_INTERVAL = 0.25


def run_generation(generation_id: int) -> None:
    start = _claim(generation_id)
    if start is None:
        return
    generation, contract, client = start
    try:
        _execute(generation, contract, client)
    except ComfyError as exc:
        _handle_failure(generation.pk, exc)
    except images.BadImage as exc:
        _fail(generation.pk, f"the backend returned an unreadable image: {exc}")
    finally:
        client.close()


def _claim(generation_id: int):
    """Lock the row, check it is ours to run, choose a prompt id and a backend."""
    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update()
            .select_related("brief__workflow_version__workflow")
            .filter(pk=generation_id)
            .first()
        )
        if generation is None:
            logger.warning("generation %s is gone; nothing to run", generation_id)
            return None
        if generation.status != Generation.Status.QUEUED:
            logger.info("%s is %s, not queued; skipping", generation, generation.status)
            return None
        version = generation.brief.workflow_version
        contract = Contract.from_schema(version.schema)
        try:
            # Checked at the form already; checked again here because the schema is
            # what bounds the cost, whatever path the row came by.
            generation.params = contract.validate(generation.params)
        except ParamsInvalid as exc:
            generation.mark_failed(f"parameters no longer valid: {exc}")
            generation.save()
            record(
                "generation.failed",
                actor=None,
                target=generation,
                workflow_slug=version.workflow.slug,
                changes={"error": generation.error},
            )
            return None
        backend = choose_backend()
        generation.mark_submitting(prompt_id=uuid.uuid4(), backend=backend)
        generation.save()
    return generation, contract, client_for(backend)


def _execute(generation: Generation, contract: Contract, client: ComfyClient) -> None:
    version = generation.brief.workflow_version
    params = dict(generation.params)
    for name in contract.image_properties():
        if params.get(name):
            with default_storage.open(params[name], "rb") as fh:
                data = fh.read()
            ref = client.upload_image(data, params[name].rsplit("/", 1)[-1])
            params[name] = ref.load_name
    graph = stamp_save_prefixes(
        contract.patch(version.graph, params), generation.prompt_id.hex[:12]
    )
    prompt_id = str(generation.prompt_id)
    fingerprint, comfyui_version = backend_fingerprint(client, graph)
    client.submit(graph, prompt_id=prompt_id, contract=contract)

    with transaction.atomic():
        locked = Generation.objects.select_for_update().get(pk=generation.pk)
        locked.mark_running()
        locked.backend_fingerprint = fingerprint
        locked.comfyui_version = comfyui_version[:32]
        locked.save()
        record(
            "generation.started",
            actor=None,
            target=locked,
            workflow_slug=version.workflow.slug,
            changes={"backend": locked.backend, "prompt_id": prompt_id, "attempt": locked.attempt},
        )

    result = client.wait(
        prompt_id,
        timeout=settings.GENERATION_RUN_TIMEOUT,
        on_progress=ProgressWriter(generation.pk, graph),
        contract=contract,
    )
    # Only what SaveImage wrote is reviewed; PreviewImage temp files are not deliverables.
    outputs = result.saved
    stored = [_store_output(client, output) for output in outputs]
    if not stored:
        raise _NoOutputs()

    with transaction.atomic():
        locked = Generation.objects.select_for_update().get(pk=generation.pk)
        if locked.status != Generation.Status.RUNNING:
            logger.info("%s became %s while running; outputs not attached", locked, locked.status)
            return
        for output, (name, thumb_name, info, size) in zip(outputs, stored, strict=True):
            Asset.objects.get_or_create(
                generation=locked,
                node_id=output.node_id,
                index=output.index,
                defaults={
                    "file": name, "thumbnail": thumb_name, "sha256": info.sha256,
                    "width": info.width, "height": info.height, "size": size,
                    "content_type": info.content_type,
                },
            )  # fmt: skip
        locked.mark_awaiting_review()
        locked.save()
        record(
            "generation.awaiting_review",
            actor=None,
            target=locked,
            workflow_slug=version.workflow.slug,
            changes={"assets": len(stored)},
        )
    try:
        client.delete_history(prompt_id)
    except ComfyError:
        logger.info("could not delete history of %s; the backend keeps it", prompt_id)


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


class _NoOutputs(ComfyError):
    def __init__(self):
        super().__init__("the workflow finished without producing any image")


def _store_output(client: ComfyClient, output: OutputImage):
    data = client.download(output, max_bytes=settings.ASSET_MAX_BYTES)
    info = images.inspect(data)
    ext = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}.get(info.format, "bin")
    # Content-addressed names: the same bytes are stored once, whatever re-runs happen.
    name = f"assets/{info.sha256[:2]}/{info.sha256}.{ext}"
    thumb_name = f"thumbs/{info.sha256[:2]}/{info.sha256}.webp"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    if not default_storage.exists(thumb_name):
        thumb = images.thumbnail(data, settings.THUMBNAIL_SIZE)
        thumb_name = default_storage.save(thumb_name, ContentFile(thumb))
    return name, thumb_name, info, len(data)


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
            progress=max(0.0, min(1.0, progress.fraction)), progress_text=text[:200]
        )


def _handle_failure(generation_id: int, exc: ComfyError) -> None:
    from reviewapp.briefs.jobs import enqueue_generation

    with transaction.atomic():
        generation = (
            Generation.objects.select_for_update()
            .select_related("brief__workflow_version__workflow")
            .get(pk=generation_id)
        )
        if generation.status not in Generation.ACTIVE:
            return
        slug = generation.brief.workflow_version.workflow.slug
        if exc.retryable and generation.attempt < MAX_ATTEMPTS:
            delay = RETRY_DELAYS[min(generation.attempt - 1, len(RETRY_DELAYS) - 1)]
            generation.mark_requeued(f"attempt {generation.attempt} failed: {exc}; retrying")
            generation.save()
            record(
                "generation.retry_scheduled",
                actor=None,
                target=generation,
                workflow_slug=slug,
                changes={"error": str(exc), "delay_s": delay},
            )
            queue = generation.brief.workflow_version.workflow.queue
            transaction.on_commit(
                lambda: enqueue_generation(generation_id, queue, delay=delay), robust=True
            )
            return
        generation.mark_failed(str(exc))
        generation.save()
        record(
            "generation.failed",
            actor=None,
            target=generation,
            workflow_slug=slug,
            changes={"error": str(exc), "retryable": exc.retryable},
        )


def _fail(generation_id: int, message: str) -> None:
    _handle_failure(generation_id, ComfyError(message))
