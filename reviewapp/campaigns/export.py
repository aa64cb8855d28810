"""A campaign's approved set as a ZIP, streamed: the images, their renditions, and a
manifest (JSON and CSV) of where each came from.

Only settled approvals go out (decided longer ago than the undo window and its margin:
Generation.objects.settled()), each cell's latest one. Images are read and written a
chunk at a time and renditions one at a time, so memory stays flat however many images
there are; the manifest's rows (a few hundred bytes a cell) are written at the end.

Per cell the manifest says where it sits (coordinates, a row file's other columns), what
ran (parameters, seed, input images by name and sha256, workflow version and checksum,
backend, its fingerprint and ComfyUI version), who approved it and when, and the sha256
of every file delivered, and of the stored original where that differs (metadata
stripped on delivery).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.utils import timezone
from PIL import Image, ImageOps

from reviewapp.briefs.models import Asset, Generation, Upload
from reviewapp.campaigns import plans
from reviewapp.campaigns.models import Campaign, Cell
from reviewapp.lib import csvsafe
from reviewapp.review.models import Decision

CHUNK = 256 * 1024
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
FORMATS = {"jpeg": ("JPEG", "jpg"), "png": ("PNG", "png"), "webp": ("WEBP", "webp")}
CSV_FIELDS = [
    "path", "kind", "rendition", "cell", "coordinates", "metadata", "generation", "seed",
    "parameters", "workflow", "version", "checksum", "backend_fingerprint",
    "comfyui_version", "sha256", "stored_original_sha256", "width", "height",
    "approved_by", "approved_at",
]  # fmt: skip


class _Sink(io.RawIOBase):
    """Where the ZIP writes; the generator hands on what piled up. Not seekable, so
    zipfile writes data descriptors instead of seeking back."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self):
        return True

    def write(self, data):
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self):
        return self.position

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def delivered(campaign: Campaign, now=None):
    """(cell, generation) for each cell with a settled approval: its latest approved
    generation, with assets and standing approvals loaded."""
    approved = (
        Generation.objects.filter(lane=campaign.lane)
        .settled(now)
        .filter(status=Generation.Status.APPROVED)
        .select_related("brief__workflow_version__workflow")
        .prefetch_related(
            "assets",
            Prefetch(
                "decisions",
                queryset=Decision.objects.filter(
                    action=Decision.Action.APPROVE, reversed_by__isnull=True
                ).select_related("actor"),
                to_attr="approvals",
            ),
        )
        .order_by("brief_id", "-id")
    )
    latest: dict[int, Generation] = {}
    for generation in approved.iterator(chunk_size=500):
        latest.setdefault(generation.brief_id, generation)
    cells = Cell.objects.filter(campaign=campaign, brief_id__in=list(latest)).order_by("index")
    for cell in cells.iterator(chunk_size=500):
        yield cell, latest[cell.brief_id]


def not_yet_settled(campaign: Campaign, now=None) -> int:
    """Approvals too recent to export (still inside the undo window and its margin)."""
    approved = Generation.objects.filter(lane=campaign.lane, status=Generation.Status.APPROVED)
    return approved.count() - approved.settled(now).count()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"


def stem(plan: dict, cell: Cell) -> str:
    """A file name that says where the cell sits: 00012_mug_night (a matrix's axes in
    order), or 00012_SKU-1_en-GB (a row's first two other columns)."""
    where = plans.in_plan_order(plan, cell.coords, cell.metadata)
    if plan["kind"] != "matrix":
        where = where[:2]
    return "_".join([f"{cell.index + 1:05d}", *(_slug(str(v)) for _, v in where)])


def _rendition(data: bytes, spec: dict) -> bytes:
    """The image fitted to the channel's size (centre-cropped to its shape) and format."""
    pil_format, _ = FORMATS[spec["format"]]
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img)
        fitted = ImageOps.fit(img, (spec["width"], spec["height"]), Image.Resampling.LANCZOS)
        if pil_format == "JPEG" and fitted.mode != "RGB":
            background = Image.new("RGB", fitted.size, (255, 255, 255))
            rgba = fitted.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            fitted = background
        out = io.BytesIO()
        options = {"quality": 90} if pil_format in ("JPEG", "WEBP") else {"optimize": True}
        fitted.save(out, format=pil_format, **options)
        return out.getvalue()


def stream(campaign: Campaign, *, now=None) -> Iterator[bytes]:
    """The ZIP, a piece at a time."""
    now = now or timezone.now()
    version = campaign.workflow_version
    sink = _Sink()
    entries: list[dict] = []
    files: list[dict] = []
    problems: list[str] = []
    inputs = _inputs(campaign)
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for cell, generation in delivered(campaign, now):
            entry = _entry(cell, generation)
            entry["inputs"] = {
                name: inputs[value]
                for name, value in generation.params.items()
                if isinstance(value, str) and value in inputs
            }
            for position, asset in enumerate(generation.assets.all()):
                name = stem(campaign.plan, cell) + (f"_{position + 1}" if position else "")
                ext = EXTENSIONS.get(asset.content_type, "png")
                try:
                    file = yield from _write_original(archive, sink, asset, f"images/{name}.{ext}")
                except OSError as exc:
                    # Its stored file is gone: said in the manifest, the rest goes out.
                    problems.append(f"cell {cell.index + 1}: image of #{generation.pk}: {exc}")
                    continue
                entry["files"].append(file)
                files.append({**file, "entry": entry})
                for spec in campaign.renditions:
                    with asset.open_delivered() as fh:
                        data = _rendition(fh.read(), spec)
                    ext = FORMATS[spec["format"]][1]
                    path = f"renditions/{spec['name']}/{name}.{ext}"
                    archive.writestr(_member(path, now), data)
                    yield sink.take()
                    rendition = {
                        "path": path,
                        "kind": "rendition",
                        "rendition": spec["name"],
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "width": spec["width"],
                        "height": spec["height"],
                    }
                    entry["files"].append(rendition)
                    files.append({**rendition, "entry": entry})
            entries.append(entry)
        manifest = {
            "campaign": {
                "id": campaign.pk,
                "title": campaign.title,
                "kind": campaign.kind,
                "axes": [a["name"] for a in campaign.plan.get("axes", [])],
                "cells": campaign.cell_count,
                "delivered": len(entries),
                "workflow": version.workflow.slug,
                "version": version.number,
                "checksum": version.checksum,
                "created_by": campaign.created_by.get_username(),
                "submitted_at": _iso(campaign.submitted_at),
                "exported_at": _iso(now),
                "renditions": campaign.renditions,
            },
            "cells": entries,
            "problems": problems,
        }
        archive.writestr(
            _member("manifest.json", now), json.dumps(manifest, indent=2, ensure_ascii=False)
        )
        archive.writestr(_member("manifest.csv", now), _csv(files, version))
    yield sink.take()


def _member(path: str, when) -> zipfile.ZipInfo:
    """A stored (not deflated: images are compressed already) member dated `when`."""
    info = zipfile.ZipInfo(path, date_time=timezone.localtime(when).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    return info


def save_to_storage(campaign: Campaign, name: str) -> tuple[str, int]:
    """The same ZIP written to the media storage (the S3 bucket when one is configured)
    under `name`; spooled through a temporary file, so memory stays flat. Returns the
    name it was stored under (storage never overwrites) and its size."""
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        for piece in stream(campaign):
            spool.write(piece)
        size = spool.tell()
        spool.seek(0)
        return default_storage.save(name, File(spool, name=name)), size


def _write_original(archive, sink, asset: Asset, path: str):
    digest = hashlib.sha256()
    member = _member(path, asset.created_at)
    with asset.open_delivered() as source, archive.open(member, "w") as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
            yield sink.take()
    sha = digest.hexdigest()
    return {
        "path": path,
        "kind": "original",
        "rendition": "",
        "sha256": sha,
        "stored_original_sha256": asset.sha256 if asset.sha256 != sha else "",
        "width": asset.width,
        "height": asset.height,
    }


def _inputs(campaign: Campaign) -> dict[str, dict]:
    """The input images the plan names, by storage name: the file name they were given
    and the sha256 of what the backend received."""
    contract = campaign.workflow_version.contract()
    names = plans.stored_files(campaign.plan, set(contract.image_properties()))
    return {
        upload.file.name: {"file": upload.original_name, "sha256": upload.sha256}
        for upload in Upload.objects.filter(file__in=names).order_by("id")
    }


def _entry(cell: Cell, generation: Generation) -> dict:
    approvals = sorted(generation.approvals, key=lambda d: (d.created_at, d.pk))
    return {
        "cell": cell.index + 1,
        "coordinates": cell.coords,
        "metadata": cell.metadata,
        "generation": generation.pk,
        "regenerated_from": generation.parent_id,
        "seed": generation.params.get("seed"),
        "parameters": generation.params,
        "backend": generation.backend,
        "backend_fingerprint": generation.backend_fingerprint,
        "comfyui_version": generation.comfyui_version,
        "gpu_seconds": generation.gpu_seconds,
        "approved_by": [d.actor.get_username() if d.actor else "" for d in approvals],
        "approved_at": _iso(generation.decided_at),
        "files": [],
    }


def _csv(files: list[dict], version) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for file in files:
        entry = file["entry"]
        writer.writerow(
            _safe(
                {
                    "path": file["path"],
                    "kind": file["kind"],
                    "rendition": file.get("rendition", ""),
                    "cell": entry["cell"],
                    "coordinates": json.dumps(entry["coordinates"], ensure_ascii=False),
                    "metadata": json.dumps(entry["metadata"], ensure_ascii=False),
                    "generation": entry["generation"],
                    "seed": "" if entry["seed"] is None else entry["seed"],
                    "parameters": json.dumps(entry["parameters"], ensure_ascii=False),
                    "workflow": version.workflow.slug,
                    "version": version.number,
                    "checksum": version.checksum,
                    "backend_fingerprint": entry["backend_fingerprint"],
                    "comfyui_version": entry["comfyui_version"],
                    "sha256": file["sha256"],
                    "stored_original_sha256": file.get("stored_original_sha256", ""),
                    "width": file["width"],
                    "height": file["height"],
                    "approved_by": " ".join(entry["approved_by"]),
                    "approved_at": entry["approved_at"],
                }
            )
        )
    return out.getvalue()


def _safe(row: dict) -> dict:
    """No cell a spreadsheet would run as a formula (metadata came from an upload)."""
    return {key: csvsafe.cell(value) for key, value in row.items()}


def _iso(value) -> str:
    return value.isoformat() if value else ""
