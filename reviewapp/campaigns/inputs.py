"""The input images a plan names: uploaded files, a ZIP of them, or (from the command
line) files beside the plan. Each is checked and re-encoded like a brief's
(images.prepare_input) before anything is stored; a problem names the file."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from django.conf import settings

from reviewapp.campaigns.plans import PlanInvalid
from reviewapp.lib import images

# A ZIP may hold at most this many images (a matrix of products, a row file's shots),
# and the images a plan names may inflate to at most this much in all.
ZIP_MAX_FILES = 2000
ZIP_MAX_TOTAL = 1024 * 1024 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def prepare(named, referenced: set[str], *, formats=None) -> dict:
    """{name: PreparedImage} for each referenced name (`named`: a mapping read with
    .get, e.g. Sources); PlanInvalid lists every bad file."""
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


class ZipImages:
    """The images of an uploaded ZIP by their name inside it (folders dropped, as a row
    file names them), read only when asked for. Refuses a ZIP that is not one or holds
    too many images; a member that inflates past the upload limit, or reads past
    ZIP_MAX_TOTAL in all, or cannot be read (encrypted, corrupt) is refused by name."""

    def __init__(self, data: bytes, label: str = "the ZIP"):
        import io

        self.label = label
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(data))
            infos = self.archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError):
            raise PlanInvalid([f"{label} is not a ZIP file"]) from None
        members = [
            info
            for info in infos
            if not info.is_dir()
            and info.filename.lower().endswith(IMAGE_SUFFIXES)
            and not PurePosixPath(info.filename).name.startswith(".")
            and "__MACOSX" not in info.filename
        ]
        if len(members) > ZIP_MAX_FILES:
            raise PlanInvalid([f"{label} holds {len(members)} images; the most is {ZIP_MAX_FILES}"])
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in members:
            name = PurePosixPath(info.filename).name
            if name in self.members:
                raise PlanInvalid([f"{label} holds two files named {name}"])
            self.members[name] = info
        self.read_so_far = 0

    def __contains__(self, name) -> bool:
        return name in self.members

    def __iter__(self):
        return iter(self.members)

    def get(self, name: str) -> bytes | None:
        info = self.members.get(name)
        if info is None:
            return None
        limit = settings.UPLOAD_MAX_BYTES
        if info.file_size > limit:
            raise PlanInvalid([f"{self.label}: {name} is larger than {limit / 2**20:.0f} MB"])
        try:
            with self.archive.open(info) as fh:
                content = fh.read(limit + 1)
        except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError,
                zlib.error):  # fmt: skip
            raise PlanInvalid(
                [f"{self.label}: {name} cannot be read (encrypted or damaged)"]
            ) from None
        if len(content) > limit:
            raise PlanInvalid([f"{self.label}: {name} is larger than {limit / 2**20:.0f} MB"])
        self.read_so_far += len(content)
        if self.read_so_far > ZIP_MAX_TOTAL:
            raise PlanInvalid(
                [f"{self.label} inflates past {ZIP_MAX_TOTAL / 2**20:.0f} MB of images in all"]
            )
        return content


class Sources:
    """Images by name from several uploads (single files and ZIPs), read when asked."""

    def __init__(self):
        self.parts: list = []
        self.names: set[str] = set()

    def add(self, part, label: str) -> None:
        clash = self.names & set(part)
        if clash:
            raise PlanInvalid([f"two images are named {sorted(clash)[0]} ({label})"])
        self.names |= set(part)
        self.parts.append(part)

    def __contains__(self, name) -> bool:
        return name in self.names

    def __iter__(self):
        return iter(self.names)

    def get(self, name: str) -> bytes | None:
        for part in self.parts:
            if name in part:
                return part.get(name)
        return None


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
