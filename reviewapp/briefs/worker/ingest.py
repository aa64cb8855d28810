"""Outputs of a finished run: downloaded, checked, stored and attached, exactly once.

Every output is fetched and checked before any is stored, so an image we refuse (too many
pixels, unreadable) fails the generation with nothing of it half-stored. Files are named by
their content hash and assets are unique per (generation, node, index), so ingesting twice
stores nothing twice; the row moves to awaiting review only after its assets are stored.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from comfybridge.client import ComfyClient, OutputImage, RunResult
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Asset, Generation
from reviewapp.lib import imagemeta, images

logger = logging.getLogger(__name__)


def ingest(client: ComfyClient, generation_id: int, result: RunResult) -> None:
    """Store what SaveImage wrote (PreviewImage temp files are not deliverables) and hand
    the generation to review, with the backend's own execution timestamps."""
    outputs = result.saved
    if not outputs:
        from comfybridge.errors import ComfyError

        raise ComfyError("the workflow finished without producing any image")
    fetched = [fetch_output(client, output) for output in outputs]
    stored = [store_output(output) for output in fetched]
    attach(generation_id, outputs, stored, result)


def _from_epoch(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def attach(generation_id: int, outputs: list[OutputImage], stored: list, result: RunResult) -> None:
    with transaction.atomic():
        locked = Generation.objects.for_update().get(pk=generation_id)
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
        locked.mark_awaiting_review(
            execution_started_at=_from_epoch(result.execution_start),
            execution_ended_at=_from_epoch(result.execution_end),
        )
        locked.save()
        record(
            actions.GENERATION_AWAITING_REVIEW,
            actor=None,
            target=locked,
            workflow_slug=locked.brief.workflow_version.workflow.slug,
            changes={"assets": len(stored)},
        )


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


def fetch_output(client: ComfyClient, output: OutputImage) -> FetchedOutput:
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


def store_output(fetched: FetchedOutput) -> StoredOutput:
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
