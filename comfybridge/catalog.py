"""The node catalogue of a ComfyUI server (its ``/object_info``), to check graphs against.

A catalogue answers: does this node class exist, which inputs does it declare, what type and
bounds does an input have, and what does a node output. ``Catalog.bundled()`` is the catalogue of
ComfyUI 0.3.64 shipped with the package, so workflows can be checked without a server.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

# Types whose values are literals written in the graph; every other type name (IMAGE, MODEL, ...)
# is carried by a link from another node's output.
VALUE_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a node class.

    ``type`` is ``INT``, ``FLOAT``, ``STRING``, ``BOOLEAN``, ``COMBO`` or a link type such as
    ``IMAGE``. ``options`` holds the choices of a combo (may be empty: checkpoint names are only
    known to a server with models). ``section`` is ``required``, ``optional`` or ``hidden``.
    """

    name: str
    type: str
    section: str
    options: tuple = ()
    config: dict = field(default_factory=dict)

    @property
    def is_link(self) -> bool:
        return self.type not in VALUE_TYPES and self.section != "hidden"

    @property
    def minimum(self) -> float | None:
        return self.config.get("min")

    @property
    def maximum(self) -> float | None:
        return self.config.get("max")


def _parse_spec(name: str, section: str, raw: Any) -> InputSpec:
    # Shapes seen in object_info: [[options...], {config}], ["COMBO", {"options": [...]}],
    # ["INT", {config}], ["IMAGE"], and hidden inputs as a bare string ("PROMPT").
    if isinstance(raw, str):
        return InputSpec(name, raw, section)
    kind = raw[0] if raw else ""
    config = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
    if isinstance(kind, list):
        return InputSpec(name, "COMBO", section, tuple(kind), config)
    if kind == "COMBO":
        return InputSpec(name, "COMBO", section, tuple(config.get("options", ())), config)
    return InputSpec(name, str(kind), section, (), config)


class Catalog:
    """Node classes and their inputs, from an ``/object_info`` reply."""

    def __init__(self, object_info: dict):
        self.object_info = object_info

    @classmethod
    def bundled(cls) -> Catalog:
        """The catalogue of ComfyUI 0.3.64 shipped in ``comfybridge/data/object_info.json``."""
        return _bundled()

    def has_class(self, class_type: str) -> bool:
        return class_type in self.object_info

    def _info(self, class_type: str) -> dict:
        try:
            return self.object_info[class_type]
        except KeyError:
            raise KeyError(f"unknown node class {class_type!r}") from None

    def input_names(self, class_type: str) -> list[str]:
        """Required, optional and hidden input names, in that order. KeyError if unknown."""
        sections = self._info(class_type).get("input", {})
        names: list[str] = []
        for section in ("required", "optional", "hidden"):
            names.extend(sections.get(section, {}))
        return names

    def input_spec(self, class_type: str, input_name: str) -> InputSpec | None:
        """The declared input, or None when the class does not declare it. KeyError if unknown."""
        sections = self._info(class_type).get("input", {})
        for section in ("required", "optional", "hidden"):
            raw = sections.get(section, {})
            if input_name in raw:
                return _parse_spec(input_name, section, raw[input_name])
        return None

    def required_inputs(self, class_type: str) -> list[str]:
        return list(self._info(class_type).get("input", {}).get("required", {}))

    def output_types(self, class_type: str) -> list[str]:
        return list(self._info(class_type).get("output", []))

    def is_output_node(self, class_type: str) -> bool:
        return bool(self._info(class_type).get("output_node"))

    def check_value(
        self, class_type: str, input_name: str, value: Any, *, check_options: bool = True
    ) -> list[str]:
        """Problems ComfyUI's validation would report for this literal value (empty if fine).

        ``check_options=False`` skips combo membership, for inputs whose choices depend on the
        server's files (checkpoint names, uploaded images).
        """
        spec = self.input_spec(class_type, input_name)
        where = f"{class_type}.{input_name}"
        if spec is None:
            return [f"{where} is not an input of {class_type}"]
        if spec.is_link:
            return [f"{where} takes a link of type {spec.type}, not a literal {value!r}"]
        problems: list[str] = []
        if spec.type == "INT":
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{where} must be an integer, got {value!r}")
        elif spec.type == "FLOAT":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"{where} must be a number, got {value!r}")
            elif not math.isfinite(value):
                problems.append(f"{where} must be finite, got {value!r}")
        elif spec.type == "STRING":
            if not isinstance(value, str):
                problems.append(f"{where} must be a string, got {value!r}")
        elif spec.type == "BOOLEAN":
            if not isinstance(value, bool):
                problems.append(f"{where} must be true or false, got {value!r}")
        elif spec.type == "COMBO" and check_options and value not in spec.options:
            problems.append(f"{where}: {value!r} is not one of {list(spec.options)!r}")
        if problems or spec.type not in ("INT", "FLOAT"):
            return problems
        if spec.minimum is not None and value < spec.minimum:
            problems.append(f"{where}: {value!r} is smaller than the minimum of {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            problems.append(f"{where}: {value!r} is greater than the maximum of {spec.maximum}")
        return problems


@cache
def _bundled() -> Catalog:
    text = resources.files("comfybridge").joinpath("data/object_info.json").read_text("utf-8")
    return Catalog(json.loads(text))
