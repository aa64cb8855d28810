"""The values a ComfyClient hands out, and how they are read from ComfyUI's replies.

Everything here is a plain value parsed from JSON the backend sent: no I/O, so it can be
tested on recorded replies. Parsing is defensive because the replies come from another
process (or a proxy, or another ComfyUI version): a missing or odd field becomes None or an
empty list rather than an exception in the middle of a finished run.

Outputs are read from a history entry's ``outputs``, never from ``executed`` websocket events,
which replay stale outputs of cached nodes (PROTOCOL.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .contract import Contract

# The history messages that end a prompt; the last one present gives its end time.
END_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


@dataclass(frozen=True)
class ImageRef:
    """A file on the backend, as ``/view`` and ``/upload/image`` name it."""

    filename: str
    subfolder: str = ""
    type: str = "output"

    @property
    def load_name(self) -> str:
        """The value a LoadImage ``image`` input takes: ``"subfolder/name"`` or ``"name"``."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename

    def query(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass(frozen=True)
class OutputImage:
    """One image of a finished prompt, from its history ``outputs``."""

    node_id: str
    index: int
    filename: str
    subfolder: str
    type: str

    @property
    def ref(self) -> ImageRef:
        return ImageRef(self.filename, self.subfolder, self.type)


@dataclass(frozen=True)
class Progress:
    """A progress report: the node running, its steps, and an estimate for the whole prompt."""

    node: str | None
    value: int
    max: int
    fraction: float


@dataclass
class RunResult:
    """A prompt that finished successfully.

    ``execution_start`` and ``execution_end`` are the backend's own clock (epoch seconds) at
    the start of the prompt and at its ``execution_success``, from the history entry; None when
    the entry does not say. They measure the run itself, without the time spent queued.
    """

    prompt_id: str
    outputs: list[OutputImage]
    history: dict = field(repr=False)
    execution_start: float | None = None
    execution_end: float | None = None

    @classmethod
    def from_history(cls, prompt_id: str, entry: dict) -> RunResult:
        """The result of a successful prompt from its history entry."""
        start, end = execution_times(entry)
        return cls(prompt_id, outputs_from_history(entry), entry, start, end)

    @property
    def saved(self) -> list[OutputImage]:
        """Outputs written to the output folder (SaveImage), not temporary previews."""
        return [o for o in self.outputs if o.type == "output"]


@dataclass(frozen=True)
class Device:
    """One compute device from ``/system_stats`` (memory in bytes; None when not reported)."""

    name: str
    type: str
    vram_total: int | None
    vram_free: int | None


@dataclass(frozen=True)
class Health:
    """A backend that answered: ``/system_stats`` plus the queue length from ``GET /prompt``.

    ``ok`` is False when it answered with something that does not look like ComfyUI.
    ``queue_remaining`` counts the running prompt and the pending ones.
    """

    url: str
    ok: bool
    comfyui_version: str | None
    devices: tuple[Device, ...]
    ram_total: int | None
    ram_free: int | None
    queue_remaining: int
    latency_ms: float

    @classmethod
    def from_replies(cls, url: str, stats: Any, queue_info: Any, latency_ms: float) -> Health:
        """From the JSON of ``/system_stats`` and of ``GET /prompt``, whatever their shape."""
        stats = stats if isinstance(stats, dict) else {}
        system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
        remaining = queue_remaining_of(queue_info)
        devices = tuple(
            Device(
                name=str(d.get("name", "?")),
                type=str(d.get("type", "?")),
                vram_total=_int_or_none(d.get("vram_total")),
                vram_free=_int_or_none(d.get("vram_free")),
            )
            for d in stats.get("devices") or []
            if isinstance(d, dict)
        )
        return cls(
            url=url,
            ok=bool(system) and remaining is not None,
            comfyui_version=system.get("comfyui_version"),
            devices=devices,
            ram_total=_int_or_none(system.get("ram_total")),
            ram_free=_int_or_none(system.get("ram_free")),
            queue_remaining=remaining if remaining is not None else 0,
            latency_ms=round(latency_ms, 1),
        )

    @property
    def vram_free(self) -> int | None:
        """The most free memory on any one device (a model must fit on one)."""
        values = [d.vram_free for d in self.devices if d.vram_free is not None]
        return max(values) if values else None


def queue_remaining_of(queue_info: Any) -> int | None:
    """``exec_info.queue_remaining`` of a ``GET /prompt`` reply, or None if it has none."""
    exec_info = queue_info.get("exec_info") if isinstance(queue_info, dict) else None
    remaining = exec_info.get("queue_remaining") if isinstance(exec_info, dict) else None
    return remaining if isinstance(remaining, int) else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds_or_none(ms: Any) -> float | None:
    """A ComfyUI timestamp (epoch milliseconds) as epoch seconds; None if not a finite number."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
        return None
    return ms / 1000.0


def execution_times(entry: Mapping) -> tuple[float | None, float | None]:
    """(start, end) in epoch seconds from a history entry's ``status.messages``.

    ComfyUI records ``["execution_start", {"timestamp": ms, ...}]`` and, at the end, one of
    ``execution_success``/``execution_error``/``execution_interrupted`` with its timestamp.
    Either is None when missing or not a number.
    """
    status = entry.get("status")
    messages = status.get("messages") if isinstance(status, Mapping) else None
    start = end = None
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, (list, tuple)) or len(message) != 2:
            continue
        kind, data = message
        if not isinstance(data, Mapping):
            continue
        if kind == "execution_start" and start is None:
            start = _seconds_or_none(data.get("timestamp"))
        elif kind in END_EVENTS:
            end = _seconds_or_none(data.get("timestamp"))
    return start, end


def _node_key(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def outputs_from_history(entry: Mapping) -> list[OutputImage]:
    """The images of a history entry, in (node_id, index) order."""
    found = []
    for node_id, ui in (entry.get("outputs") or {}).items():
        for index, image in enumerate((ui or {}).get("images") or []):
            found.append(
                OutputImage(
                    str(node_id),
                    index,
                    image.get("filename", ""),
                    image.get("subfolder", ""),
                    image.get("type", "output"),
                )
            )
    return sorted(found, key=lambda o: (_node_key(o.node_id), o.index))


def rejection_messages(
    body: Mapping, graph: Mapping | None = None, contract: Contract | None = None
) -> list[str]:
    """Readable lines from a /prompt error body: node, class, input and bound property."""
    messages = []
    error = body.get("error")
    node_errors = body.get("node_errors") or {}
    if isinstance(error, Mapping) and (
        error.get("type") != "prompt_outputs_failed_validation" or not node_errors
    ):
        text = error.get("message") or error.get("type") or "rejected"
        if error.get("details"):
            text = f"{text} ({error['details']})"
        messages.append(text)
    elif isinstance(error, str):
        messages.append(error)
    for node_id, entry in node_errors.items():
        class_type = entry.get("class_type")
        if not class_type and graph and isinstance(graph.get(node_id), Mapping):
            class_type = graph[node_id].get("class_type")
        node = f"node {node_id} ({class_type})" if class_type else f"node {node_id}"
        for err in entry.get("errors") or []:
            input_name = (err.get("extra_info") or {}).get("input_name")
            where = f"{node} input {input_name!r}" if input_name else node
            prop = (
                contract.property_for(str(node_id), input_name) if contract and input_name else None
            )
            if prop:
                where = f"{where} (property {prop!r})"
            text = err.get("message") or err.get("type") or "invalid"
            details = err.get("details")
            if details and details != input_name:
                text = f"{text}: {details}"
            messages.append(f"{where}: {text}")
    return messages
