"""The node catalogue served at /object_info, built from ComfyUI's real one."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from comfybridge.sim.config import CHECKPOINTS
from comfybridge.sim.files import Folders
from comfybridge.sim.nodes import NODES

_OBJECT_INFO = Path(__file__).resolve().parent.parent / "data" / "object_info.json"
# Combo inputs whose options are model files: the sim offers its own checkpoint names.
_CHECKPOINT_INPUTS = {"ckpt_name"}
_IMAGE_LIST_CLASSES = {"LoadImage", "LoadImageMask"}


@functools.lru_cache(maxsize=1)
def _base() -> dict[str, Any]:
    info = json.loads(_OBJECT_INFO.read_text())
    out = {}
    for name in NODES:
        entry = copy.deepcopy(info[name])
        for section in ("required", "optional"):
            for input_name, spec in entry["input"].get(section, {}).items():
                if input_name in _CHECKPOINT_INPUTS and isinstance(spec[0], list):
                    spec[0] = list(CHECKPOINTS)
        out[name] = entry
    return out


class Catalog:
    """The node catalogue. Like ComfyUI, which lists its model folders on every
    ``/object_info``, the checkpoints offered are the configured names plus any file put in
    ``<data-dir>/models/checkpoints`` while it runs (a model copied onto a live backend)."""

    def __init__(self, folders: Folders, checkpoints: tuple[str, ...] = CHECKPOINTS):
        self.folders = folders
        self.configured = tuple(checkpoints)
        self.checkpoints: tuple[str, ...] = ()
        self._entries: dict[str, Any] = {}
        self._refresh()

    def _installed(self) -> tuple[str, ...]:
        folder = self.folders.root / "models" / "checkpoints"
        try:
            names = sorted(p.name for p in folder.iterdir() if p.suffix == ".safetensors")
        except OSError:
            return ()
        return tuple(n for n in names if n not in self.configured)

    def _refresh(self) -> None:
        checkpoints = self.configured + self._installed()
        if checkpoints == self.checkpoints and self._entries:
            return
        self.checkpoints = checkpoints
        self._entries = _base() if checkpoints == CHECKPOINTS else self._with_checkpoints()

    def _with_checkpoints(self) -> dict[str, Any]:
        out = copy.deepcopy(_base())
        for entry in out.values():
            for section in ("required", "optional"):
                for input_name, spec in entry["input"].get(section, {}).items():
                    if input_name in _CHECKPOINT_INPUTS and isinstance(spec[0], list):
                        spec[0] = list(self.checkpoints)
        return out

    def has(self, class_type: Any) -> bool:
        self._refresh()
        return isinstance(class_type, str) and class_type in self._entries

    def info(self, class_type: str) -> dict[str, Any]:
        entry = self._entries[class_type]
        if class_type in _IMAGE_LIST_CLASSES:
            entry = copy.deepcopy(entry)
            entry["input"]["required"]["image"][0] = self.folders.input_images()
        return entry

    def all(self) -> dict[str, Any]:
        self._refresh()
        return {name: self.info(name) for name in self._entries}

    def output_types(self, class_type: str) -> list[str]:
        return self._entries[class_type]["output"]

    def is_output_node(self, class_type: str) -> bool:
        return bool(self._entries[class_type].get("output_node"))

    def ordered_inputs(self, class_type: str) -> list[tuple[str, str, Any, dict]]:
        """(name, category, type, extra) for required then optional inputs."""
        entry = self._entries[class_type]
        out = []
        for section in ("required", "optional"):
            specs = entry["input"].get(section, {})
            for name in entry.get("input_order", {}).get(section, list(specs)):
                spec = specs[name]
                extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                out.append((name, section, spec[0], extra))
        return out

    def input_spec(self, class_type: str, name: str) -> tuple[str, Any, dict] | None:
        for n, section, typ, extra in self.ordered_inputs(class_type):
            if n == name:
                return section, typ, extra
        return None
