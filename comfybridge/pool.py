"""Several ComfyUI backends behind one ``choose()``.

A backend is *ready* for a workflow when it answers (``/system_stats``, ``GET /prompt``), has
every node class and model the workflow names (``/object_info``, cached per backend), and, when
the pool has a warm-up workflow, has run it since it last started. ``choose(graph)`` returns the
ready backend with the shortest queue.

Why it works the way it does:

- The queue length is read fresh on every ``choose()``: callers are separate worker processes,
  each with its own pool, and only the backend knows how much the others gave it.
- A backend that cannot be reached is left alone for a while that doubles on each consecutive
  failure, up to a cap, so a dead host costs one refused connection per backoff period instead
  of one per job. ``report_failure``/``report_success`` let a caller feed in what its runs saw.
- "Warmed up" is read from the backend, not remembered: the warm-up runs under a prompt id
  derived from its graph, and the backend is warm while its history holds a successful run of
  that id. ComfyUI keeps history in memory, so a restart (which also unloads the models) makes
  it cold again, and every worker process sees the same answer, so each backend is warmed once
  per start rather than once per worker.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .capabilities import BackendIncapable
from .client import AuthRejected, ComfyClient, split_credentials
from .contract import checksum
from .errors import ComfyError, ComfyUnavailable, PromptLost, WorkflowRejected

log = logging.getLogger(__name__)

# What a backend can be, from the pool's point of view.
READY = "ready"
DOWN = "down"
INCAPABLE = "incapable"
COLD = "cold"  # healthy and capable, the warm-up has not run since it started
WARMING = "warming"  # the warm-up is queued or running
# States that may pass by themselves: a caller can retry later.
TEMPORARY = frozenset({DOWN, COLD, WARMING})

# Errors that say the backend itself is unwell, as opposed to the workflow or its parameters.
BACKEND_FAILURES = (ComfyUnavailable, PromptLost, AuthRejected)


@dataclass(frozen=True)
class BackendSpec:
    """A backend URL and the headers its proxy wants (credentials in the URL work too)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendStatus:
    """One backend as ``choose()`` last saw it. ``reason`` says why it is not ready."""

    url: str
    state: str
    reason: str = ""
    queue_remaining: int | None = None
    failures: int = 0

    @property
    def ready(self) -> bool:
        return self.state == READY


class NoBackendReady(ComfyError):
    """No backend can take this workflow now. ``statuses`` say why, per backend.

    Retryable when some backend is only down, cold or warming up; not when every backend lacks
    something the workflow needs.
    """

    def __init__(self, statuses: list[BackendStatus]):
        self.statuses = list(statuses)
        self.retryable = any(s.state in TEMPORARY for s in self.statuses)
        lines = "; ".join(f"{s.url}: {s.reason}" for s in self.statuses)
        super().__init__(f"no ComfyUI backend is ready: {lines or 'none configured'}")

    @property
    def reasons(self) -> dict[str, str]:
        return {s.url: s.reason for s in self.statuses}


# How long a full health check (/system_stats) counts; in between, choosing a backend
# costs one GET /prompt per backend.
HEALTH_TTL = 5.0


class _Backend:
    def __init__(self, url: str, headers: dict[str, str], probe: ComfyClient):
        self.url = url
        self.headers = headers
        self.probe = probe  # health, capabilities and warm-up submissions; never waits
        self.failures = 0
        self.retry_at = 0.0
        self.last_error = ""
        # Until then a backend that answered /system_stats is only asked its queue length.
        self.healthy_until = 0.0


class BackendPool:
    """Chooses among ComfyUI backends; state lives in this object only.

    ``backends`` are URLs or ``BackendSpec``s; ``headers`` maps a URL to extra headers for it.
    ``timeout`` is for clients handed out by ``client()``; ``probe_timeout`` for the pool's own
    health and capability requests, kept short so one hung host does not stall ``choose()``.
    ``warmup_graph``: an API-format graph that must have run on a backend (since it started)
    before the backend is ready; with ``auto_warm`` the pool queues it on a cold backend itself.
    Prefer a warm-up that ends in PreviewImage, so it leaves no files in output/.
    Backoff after a failure: ``backoff_base * 2**(n-1)`` seconds for the n-th in a row, at most
    ``backoff_cap``. Use one pool per process; its methods take a lock, but probes are serial.
    """

    def __init__(
        self,
        backends: Iterable[str | BackendSpec],
        *,
        headers: Mapping[str, Mapping[str, str]] | None = None,
        timeout: float = 30.0,
        probe_timeout: float = 5.0,
        warmup_graph: Mapping[str, Any] | None = None,
        auto_warm: bool = True,
        capabilities_ttl: float = 300.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.warmup_graph = dict(warmup_graph) if warmup_graph else None
        self.warmup_id = f"warmup-{checksum(self.warmup_graph)[:24]}" if warmup_graph else None
        self.auto_warm = auto_warm
        self.capabilities_ttl = capabilities_ttl
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.rng = rng or random.Random()
        self._lock = threading.RLock()
        extra = {split_credentials(u)[0]: dict(h) for u, h in (headers or {}).items()}
        self._backends: dict[str, _Backend] = {}
        for item in backends:
            spec = item if isinstance(item, BackendSpec) else BackendSpec(str(item))
            url, url_headers = split_credentials(spec.url)
            merged = {**url_headers, **dict(spec.headers), **extra.get(url, {})}
            if url in self._backends:
                raise ValueError(f"backend {url} is listed twice")
            probe = ComfyClient(
                url, headers=merged, timeout=probe_timeout, capabilities_ttl=capabilities_ttl
            )
            self._backends[url] = _Backend(url, merged, probe)
        if not self._backends:
            raise ValueError("a BackendPool needs at least one backend")

    @property
    def urls(self) -> list[str]:
        """The backends' URLs, without credentials: what ``choose()`` returns."""
        return list(self._backends)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.probe.close()

    def __enter__(self) -> BackendPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- choosing ------------------------------------------------------------------------

    def choose(self, graph: Mapping[str, Any] | None = None, *, wait: float = 0.0) -> str:
        """The URL of the ready backend with the lowest ``queue_remaining`` (ties at random).

        With ``wait`` > 0, keeps looking that many seconds (for a warm-up to finish, a backend
        to come back). Raises ``NoBackendReady`` naming why each backend is not ready.
        """
        deadline = self.clock() + wait
        while True:
            statuses = self.status(graph)
            ready = [s for s in statuses if s.ready]
            if ready:
                lowest = min(s.queue_remaining or 0 for s in ready)
                return self.rng.choice([s.url for s in ready if (s.queue_remaining or 0) == lowest])
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise NoBackendReady(statuses)
            time.sleep(min(0.2, remaining))

    def status(self, graph: Mapping[str, Any] | None = None) -> list[BackendStatus]:
        """Every backend's state for ``graph`` (probing those not backing off). Never raises."""
        with self._lock:
            return [self._survey(b, graph) for b in self._backends.values()]

    def _survey(self, b: _Backend, graph: Mapping[str, Any] | None) -> BackendStatus:
        now = self.clock()
        if now < b.retry_at:
            return self._status(
                b, DOWN, f"down ({b.last_error}); next try in {b.retry_at - now:.1f}s"
            )
        try:
            if now < b.healthy_until:
                queued = b.probe.queue_remaining()
            else:
                health = b.probe.health()
                if not health.ok:
                    self._fail(b, ComfyUnavailable("answers, but not like ComfyUI does"))
                    return self._status(b, DOWN, f"down ({b.last_error})")
                queued = health.queue_remaining
                b.healthy_until = now + HEALTH_TTL
        except ComfyError as exc:
            self._fail(b, exc)
            return self._status(b, DOWN, f"down ({exc})")
        b.failures, b.retry_at, b.last_error = 0, 0.0, ""
        try:
            problems = b.probe.capabilities().missing_for(graph) if graph else []
            if self.warmup_graph:
                missing = b.probe.capabilities().missing_for(self.warmup_graph)
                problems += [f"warm-up workflow: {p}" for p in missing]
        except ComfyError as exc:
            self._fail(b, exc)
            return self._status(b, DOWN, f"down (GET /object_info: {exc})")
        if problems:
            return self._status(b, INCAPABLE, "; ".join(problems), queued)
        if self.warmup_graph:
            state, reason = self._warm_state(b)
            if state != READY:
                return self._status(b, state, reason, queued)
        return self._status(b, READY, "", queued)

    def _status(
        self, b: _Backend, state: str, reason: str, queued: int | None = None
    ) -> BackendStatus:
        return BackendStatus(b.url, state, reason, queued, b.failures)

    def _fail(self, b: _Backend, error: Exception | str) -> None:
        b.healthy_until = 0.0
        b.failures += 1
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (b.failures - 1))
        b.retry_at = self.clock() + delay
        b.last_error = str(error)
        log.info("backend %s failed (%s); next try in %.1fs", b.url, b.last_error, delay)

    # -- warm-up -------------------------------------------------------------------------

    def _warm_state(self, b: _Backend) -> tuple[str, str]:
        assert self.warmup_id is not None and self.warmup_graph is not None
        try:
            where = b.probe.locate(self.warmup_id)
            if where == "done":
                failure = self._warmup_failure(b)
                if failure is None:
                    return READY, ""
                # Forget the failed run, so the next try after the backoff runs it again.
                with contextlib.suppress(ComfyError):
                    b.probe.delete_history(self.warmup_id)
                self._fail(b, f"warm-up failed: {failure}")
                return DOWN, f"warm-up failed ({failure})"
            if where in ("running", "pending"):
                return WARMING, f"warming up (warm-up {where})"
            if not self.auto_warm:
                return COLD, "not warmed up (run pool.warm_up())"
            b.probe.submit(
                self.warmup_graph, prompt_id=self.warmup_id, skip_if_known=True, follow=False
            )
            return WARMING, "warming up (warm-up queued now)"
        except WorkflowRejected as exc:
            return INCAPABLE, f"warm-up workflow rejected ({exc})"
        except ComfyError as exc:
            self._fail(b, exc)
            return DOWN, f"down ({exc})"

    def _warmup_failure(self, b: _Backend) -> str | None:
        """None if the warm-up's history entry is a success, else what went wrong."""
        try:
            # Decided from the history entry at once: no websocket, no waiting.
            b.probe.wait(self.warmup_id, timeout=self.probe_timeout)
        except (ComfyUnavailable, PromptLost):
            raise
        except ComfyError as exc:
            return str(exc)
        return None

    def warm_up(self, url: str | None = None, *, timeout: float = 600.0) -> dict[str, float]:
        """Run the warm-up on ``url`` (default: every backend that is up and not warm yet),
        waiting for it; returns seconds per backend. Raises what the run raises.
        """
        if self.warmup_graph is None:
            raise ValueError("this pool has no warm-up workflow")
        targets = [self._backend(url)] if url else list(self._backends.values())
        took = {}
        for b in targets:
            with self._lock:
                state = self._survey(b, None)
            if url is None and state.state not in (COLD, WARMING):
                continue
            started = time.monotonic()
            with self.client(b.url, timeout=self.probe_timeout) as client:
                client.submit(self.warmup_graph, prompt_id=self.warmup_id, skip_if_known=True)
                client.wait(self.warmup_id, timeout=timeout)
            took[b.url] = round(time.monotonic() - started, 3)
        return took

    # -- what callers saw ----------------------------------------------------------------

    def report_failure(self, url: str, error: BaseException | None = None) -> bool:
        """A run on ``url`` failed: back off from it. Returns whether it counted.

        Only errors that say the backend is unwell count (unreachable, 5xx, forgot a prompt,
        refused credentials); a rejected workflow or a failing node is not the backend's fault.
        """
        if error is not None and not isinstance(error, BACKEND_FAILURES):
            return False
        with self._lock:
            b = self._backends.get(split_credentials(url)[0])
            if b is None:
                log.warning("report_failure for %s, which is not in the pool", url)
                return False
            self._fail(b, error or "reported by a caller")
        return True

    def report_success(self, url: str) -> None:
        """A run on ``url`` went through: forget its failures."""
        with self._lock:
            b = self._backends.get(split_credentials(url)[0])
            if b is not None:
                b.failures, b.retry_at, b.last_error = 0, 0.0, ""

    # -- clients -------------------------------------------------------------------------

    def _backend(self, url: str) -> _Backend:
        try:
            return self._backends[split_credentials(url)[0]]
        except KeyError:
            raise KeyError(f"{url} is not a backend of this pool") from None

    def client(self, url: str, **kwargs: Any) -> ComfyClient:
        """A new ``ComfyClient`` for ``url`` with its headers; the caller closes it."""
        b = self._backend(url)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("capabilities_ttl", self.capabilities_ttl)
        return ComfyClient(b.url, headers=b.headers, **kwargs)

    def check_can_run(self, url: str, graph: Mapping[str, Any]) -> None:
        """``BackendIncapable`` if ``url`` lacks a class or model of ``graph`` (cached answer)."""
        b = self._backend(url)
        problems = b.probe.capabilities().missing_for(graph)
        if problems:
            raise BackendIncapable(problems, url=b.url)
