"""What ``BackendPool`` says about its backends: states, per-backend status, ``NoBackendReady``.

Kept apart from the pool's logic because callers (a web page, a job's error message) read
these without choosing anything; ``comfybridge.pool`` re-exports every name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ComfyError

# What a backend can be, from the pool's point of view.
READY = "ready"
DOWN = "down"
INCAPABLE = "incapable"
COLD = "cold"  # healthy and capable, the warm-up has not run since it started
WARMING = "warming"  # the warm-up is queued or running
# States that may pass by themselves: a caller can retry later.
TEMPORARY = frozenset({DOWN, COLD, WARMING})


@dataclass(frozen=True)
class BackendSpec:
    """A backend URL and the headers its proxy wants (credentials in the URL work too)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendStatus:
    """One backend as ``choose()`` last saw it. ``reason`` says why it is not ready.

    ``model`` is the model key last submitted there (``()`` if none recorded); ``missing``
    names, without node ids or URL, what an incapable backend lacks (``"checkpoint 'x'"``);
    ``error`` is the failure that put a down backend down.
    """

    url: str
    state: str
    reason: str = ""
    queue_remaining: int | None = None
    failures: int = 0
    model: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    error: str = ""

    @property
    def ready(self) -> bool:
        return self.state == READY


_NODE_SUFFIX = re.compile(r" \(node [^)]*\)(?: is not on .*)?$")


def missing_item(problem: str) -> str:
    """``"checkpoint 'x' (node 4, CheckpointLoaderSimple.ckpt_name) is not on http://a"`` ->
    ``"checkpoint 'x'"``: the part that is the same on every backend lacking it."""
    return _NODE_SUFFIX.sub("", problem)


def short_error(error: str) -> str:
    """A failure in a few words for a web page: requests' messages run to 300 characters."""
    lowered = error.lower()
    status = re.search(r"HTTP \d{3}(?: [A-Z][a-z]+)*", error)
    if status:
        return status.group(0)
    for needle, words in (
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("name or service not known", "host not found"),
        ("failed to resolve", "host not found"),
        ("not like comfyui", "does not answer like ComfyUI"),
        ("warm-up failed", "its warm-up failed"),
        ("connection", "connection failed"),
    ):
        if needle in lowered:
            return words
    return error if len(error) <= 80 else error[:77] + "..."


class NoBackendReady(ComfyError):
    """No backend can take this workflow now. ``statuses`` say why, per backend.

    Retryable when some backend is only down, cold or warming up; not when every backend lacks
    something the workflow needs. ``summary()`` says it in one sentence for a web page.
    """

    def __init__(self, statuses: list[BackendStatus], *, pool_name: str = ""):
        self.statuses = list(statuses)
        self.pool_name = pool_name
        self.retryable = any(s.state in TEMPORARY for s in self.statuses)
        lines = "; ".join(f"{s.url}: {s.reason}" for s in self.statuses)
        where = f" in pool {pool_name}" if pool_name else ""
        super().__init__(f"no ComfyUI backend{where} is ready: {lines or 'none configured'}")

    @property
    def reasons(self) -> dict[str, str]:
        return {s.url: s.reason for s in self.statuses}

    def summary(self) -> str:
        """One sentence, e.g. "no backend in pool sdxl has checkpoint 'x.safetensors'" or
        "all 2 backends in pool cpu are down (http://a: connection refused; ...)"."""
        where = f"pool {self.pool_name}" if self.pool_name else "the pool"
        statuses = self.statuses
        if not statuses:
            return f"{where} has no backends"
        states = {s.state for s in statuses}
        if states == {INCAPABLE}:
            common = set.intersection(*(set(s.missing) for s in statuses))
            if common:
                lacking = [m for m in statuses[0].missing if m in common]
                return f"no backend in {where} has {', nor '.join(dict.fromkeys(lacking))}"
            each = "; ".join(f"{s.url} {_brief(s)}" for s in statuses)
            return f"no backend in {where} can run this workflow ({each})"
        if states == {DOWN}:
            each = "; ".join(f"{s.url}: {short_error(s.error or s.reason)}" for s in statuses)
            if len(statuses) == 1:
                return f"the only backend in {where} is down ({each})"
            return f"all {len(statuses)} backends in {where} are down ({each})"
        if states <= {COLD, WARMING}:
            return f"no backend in {where} is warmed up yet; try again in a moment"
        each = "; ".join(f"{s.url} {_brief(s)}" for s in statuses)
        return f"no backend in {where} is ready ({each})"


def _brief(s: BackendStatus) -> str:
    if s.state == DOWN:
        return f"is down ({short_error(s.error or s.reason)})"
    if s.state == INCAPABLE:
        return f"lacks {', '.join(s.missing)}" if s.missing else f"cannot run it ({s.reason})"
    if s.state == WARMING:
        return "is warming up"
    if s.state == COLD:
        return "is not warmed up"
    return s.reason or s.state


class PoolFull(NoBackendReady):
    """Backends are ready, but those the prompt should go to (by queue and, with affinity,
    by model) already hold as many prompts as the caller allows."""

    retryable = True

    def __init__(self, statuses: list[BackendStatus], *, pool_name: str = ""):
        super().__init__(statuses, pool_name=pool_name)
        self.retryable = True

    def summary(self) -> str:
        where = f"pool {self.pool_name}" if self.pool_name else "the pool"
        return f"the backends in {where} that should take it have full queues"
