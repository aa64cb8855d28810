"""Progress of one prompt, estimated from the websocket messages ComfyUI sends about it.

ComfyUI reports progress per node (``progress``: steps of a sampler; ``progress_state``: the
state of every node; ``executing``: a node starts; ``execution_cached``: nodes skipped). It
never says how far the whole prompt is, so ``ProgressTracker`` estimates it by counting steps:
a node without progress counts as one step, a sampler as its step count, and nodes not reached
yet count one step each, so the estimate can only rise. The websocket is only a hint: a lost
message makes the estimate coarser, never wrong about the outcome, which is read from the
history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .values import Progress


class ProgressTracker:
    """Turns progress_state / progress / executing messages into ``Progress`` reports.

    ``node_count`` is the number of nodes in the prompt's graph (None when unknown: a prompt
    submitted elsewhere). ``callback`` receives each report that differs from the last.
    """

    def __init__(self, node_count: int | None, callback: Callable[[Progress], Any] | None):
        self.node_count = node_count
        self.callback = callback
        self.nodes: dict[str, list] = {}  # node -> [value, max, finished]
        self.cached: set[str] = set()
        self.fraction = 0.0
        self.last: tuple | None = None

    def feed(self, kind: str, data: Mapping) -> None:
        current = None
        if kind == "execution_cached":
            self.cached.update(str(n) for n in data.get("nodes") or [])
        elif kind == "progress_state":
            for node_id, state in (data.get("nodes") or {}).items():
                finished = state.get("state") == "finished"
                top = max(int(state.get("max") or 1), 1)
                value = top if finished else int(state.get("value") or 0)
                self.nodes[str(node_id)] = [value, top, finished]
                if not finished:
                    current = str(node_id)
        elif kind == "progress":
            current = str(data.get("node"))
            top = max(int(data.get("max") or 1), 1)
            self.nodes[current] = [min(int(data.get("value") or 0), top), top, False]
        elif kind == "executing" and data.get("node") is not None:
            current = str(data["node"])
            self.nodes.setdefault(current, [0, 1, False])
        else:
            return
        self._report(current)

    def _report(self, current: str | None) -> None:
        seen_cached = self.cached - set(self.nodes)
        done = sum(v for v, _m, _f in self.nodes.values()) + len(seen_cached)
        total = sum(m for _v, m, _f in self.nodes.values()) + len(seen_cached)
        if self.node_count:
            total += max(0, self.node_count - len(self.nodes) - len(seen_cached))
        fraction = min(done / total, 0.999) if total else 0.0
        self.fraction = max(self.fraction, fraction)
        if current is None:
            running = [n for n, (_v, _m, f) in self.nodes.items() if not f]
            current = running[-1] if running else None
        value, top = (self.nodes[current][:2]) if current in self.nodes else (0, 1)
        self._emit(Progress(current, value, top, round(self.fraction, 4)))

    def finish(self) -> None:
        """The prompt succeeded: report it whole."""
        self.fraction = 1.0
        self._emit(Progress(None, 1, 1, 1.0))

    def _emit(self, progress: Progress) -> None:
        key = (progress.node, progress.value, progress.max, progress.fraction)
        if self.callback is None or key == self.last:
            return
        self.last = key
        self.callback(progress)
