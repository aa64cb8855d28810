"""input/, output/ and temp/ handling with ComfyUI's naming rules (folder_paths.py)."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
from pathlib import Path

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


class Folders:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir)
        self.input = str(self.root / "input")
        self.output = str(self.root / "output")
        self.temp = str(self.root / "temp")

    def clean_temp(self) -> None:
        # ComfyUI empties temp/ at startup; previews never survive a restart.
        shutil.rmtree(self.temp, ignore_errors=True)
        os.makedirs(self.temp, exist_ok=True)

    def by_type(self, type_name: str | None) -> str | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(type_name or "")

    def annotated(self, name: str) -> tuple[str, str | None]:
        """Split ``"x.png [output]"`` into the name and the directory it points at."""
        for suffix, base in (("[output]", self.output), ("[input]", self.input)):
            if name.endswith(suffix):
                return name[: -len(suffix) - 1], base
        if name.endswith("[temp]"):
            return name[:-7], self.temp
        return name, None

    def annotated_path(self, name: str) -> str:
        name, base = self.annotated(name)
        return os.path.join(base or self.input, name)

    def input_images(self) -> list[str]:
        """LoadImage's combo: top-level files of input/ that look like images."""
        try:
            entries = os.listdir(self.input)
        except FileNotFoundError:
            return []
        files = [f for f in entries if os.path.isfile(os.path.join(self.input, f))]
        images = []
        for f in files:
            mime = mimetypes.guess_type(f)[0] or ""
            if mime.startswith("image/"):
                images.append(f)
        return sorted(images)

    def save_path(self, filename_prefix: str, base_dir: str) -> tuple[str, str, int, str]:
        """Port of folder_paths.get_save_image_path: folder, file stem, counter, subfolder."""
        subfolder = os.path.dirname(os.path.normpath(filename_prefix))
        filename = os.path.basename(os.path.normpath(filename_prefix))
        full_folder = os.path.join(base_dir, subfolder)
        if os.path.commonpath((base_dir, os.path.abspath(full_folder))) != base_dir:
            raise ValueError(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {os.path.abspath(full_folder)}"
                f"\n         output_dir: {base_dir}"
            )

        def counter_of(name: str) -> tuple[int, str]:
            prefix_len = len(os.path.basename(filename))
            prefix = name[: prefix_len + 1]
            try:
                digits = int(name[prefix_len + 1 :].split("_")[0])
            except ValueError:
                digits = 0
            return digits, prefix

        try:
            existing = [counter_of(n) for n in os.listdir(full_folder)]
            matching = [
                c
                for c in existing
                if os.path.normcase(c[1][:-1]) == os.path.normcase(filename) and c[1][-1:] == "_"
            ]
            counter = max(matching)[0] + 1 if matching else 1
        except FileNotFoundError:
            os.makedirs(full_folder, exist_ok=True)
            counter = 1
        return full_folder, filename, counter, subfolder


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()
