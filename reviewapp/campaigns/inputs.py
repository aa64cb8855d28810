"""The input images a plan names: uploaded files, a ZIP of them, or (from the command
line) files beside the plan. Each is checked and re-encoded like a brief's
(images.prepare_input) before anything is stored; a problem names the file."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from reviewapp.campaigns.plans import PlanInvalid
from reviewapp.lib import images

# A ZIP may hold at most this many images (a matrix of products, a row file's shots).
ZIP_MAX_FILES = 2000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def prepare(named: dict[str, bytes], referenced: set[str], *, formats=None) -> dict:
    """{name: PreparedImage} for each referenced name; PlanInvalid lists every bad file."""
    prepared, problems = {}, []
    for name in sorted(referenced):
        data = named.get(name)
        if data is None:
            problems.append(f"{name}: no such file was uploaded")
            continue
        try:
            prepared[name] = images.prepare_input(
                data,
                name[:100],
                max_pixels=settings.IMAGE_MAX_PIXELS,
                **({"formats": formats} if formats else {}),
            )
        except images.BadImage as exc:
            problems.append(f"{name[:100]}: {exc}")
    if problems:
        raise PlanInvalid(problems)
    return prepared


def zip_members(data: bytes, label: str = "the ZIP") -> dict[str, bytes]:
    """The images in a ZIP by their name inside it (folders dropped, as a row file names
    them). Refuses a ZIP that is not one, holds too many files, or inflates past the
    upload limit per file (a ZIP bomb stops at the first such member)."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PlanInvalid([f"{label} is not a ZIP file"]) from None
    members = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.lower().endswith(IMAGE_SUFFIXES)
        and not PurePosixPath(info.filename).name.startswith(".")
        and "__MACOSX" not in info.filename
    ]
    if len(members) > ZIP_MAX_FILES:
        raise PlanInvalid([f"{label} holds {len(members)} images; the most is {ZIP_MAX_FILES}"])
    out: dict[str, bytes] = {}
    limit = settings.UPLOAD_MAX_BYTES
    for info in members:
        name = PurePosixPath(info.filename).name
        if info.file_size > limit:
            raise PlanInvalid([f"{label}: {name} is larger than {limit // 2**20} MB"])
        if name in out:
            raise PlanInvalid([f"{label} holds two files named {name}"])
        with archive.open(info) as fh:
            content = fh.read(limit + 1)
        if len(content) > limit:
            raise PlanInvalid([f"{label}: {name} is larger than {limit // 2**20} MB"])
        out[name] = content
    return out


class FilesBeside:
    """The files a plan on disk may name: paths relative to its folder, never outside."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def path(self, name: str) -> Path | None:
        candidate = (self.root / name).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and self.path(name) is not None

    def read(self, names: set[str]) -> dict[str, bytes]:
        return {name: self.path(name).read_bytes() for name in names if name in self}
