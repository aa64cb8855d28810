"""Several ComfyUI backends behind one ``choose()``.

A backend is *ready* for a workflow when it answers (``/system_stats``, ``GET /prompt``), has
every node class and model the workflow names (``/object_info``, cached per backend), and, when
the pool has a warm-up workflow, has run it since it last started. ``choose(graph)`` returns a
ready backend: the one with the shortest queue, or, with affinity, one that already has the
graph's model loaded if its queue is not much longer.

Why it works the way it does:

- What the pool learns (failures and backoff, health, the last model per backend, boot
  signatures) lives in a store (``comfybridge.poolstate``): ``MemoryState`` per process, or
  ``RedisState`` shared by every web and worker process, so a backoff learned by one job holds
  for the next one, even in a forking RQ worker.
- The queue length is read fresh on every ``choose()`` (unless ``queue_ttl`` allows a recent
  reading): only the backend knows how much all the processes gave it.
- A backend that cannot be reached is left alone for a while that doubles on each consecutive
  failure, up to a cap, so a dead host costs one refused connection per backoff period instead
  of one per job. ``report_failure``/``report_success`` let a caller feed in what its runs saw.
- "Warmed up" is read from the backend, not remembered: the warm-up runs under a prompt id
  derived from its graph, and the backend is warm while its history holds a successful run of
  that id. ComfyUI keeps history in memory, so a restart (which also unloads the models) makes
  it cold again. A restart is also seen when the boot signature of ``/system_stats`` changes
  (another version, other arguments, other devices): the pool then forgets the warm-up's
  history entry (in case something in front of the backend kept it) and re-reads the
  backend's node classes and models.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .capabilities import MODEL_INPUTS, BackendIncapable
from .client import AuthRejected, ComfyClient, split_credentials
from .contract import checksum
from .errors import ComfyError, ComfyUnavailable, PromptLost, WorkflowRejected
from .poolstate import BackendState, MemoryState, PoolState
from .poolstatus import (
    COLD,
    DOWN,
    INCAPABLE,
    READY,
    TEMPORARY,
    WARMING,
    BackendSpec,
    BackendStatus,
    NoBackendReady,
    PoolFull,
    missing_item,
)

__all__ = [
    "BACKEND_FAILURES",
    "COLD",
    "DOWN",
    "INCAPABLE",
    "READY",
    "TEMPORARY",
    "WARMING",
    "BackendPool",
    "BackendSpec",
    "BackendStatus",
    "NoBackendReady",
    "PoolFull",
    "boot_signature",
    "model_key",
    "warmup_prompt_id",
]

log = logging.getLogger(__name__)

# Errors that say the backend itself is unwell, as opposed to the workflow or its parameters.
BACKEND_FAILURES = (ComfyUnavailable, PromptLost, AuthRejected)

# How long a full health check (/system_stats) counts; in between, choosing a backend
# costs one GET /prompt per backend.
HEALTH_TTL = 5.0
# How often the node classes and models of a backend that lacks what a graph needs are read
# again (instead of once per capabilities_ttl), so work waiting for a model that was just
# installed there starts soon after.
INCAPABLE_RECHECK = 15.0

# Loader inputs whose file is what a GPU switches between at a cost: whole checkpoints and
# diffusion models (gigabytes). LoRAs, VAEs and the like are small or patched in quickly.
AFFINITY_INPUTS = frozenset(
    name for name, kind in MODEL_INPUTS.items() if kind in ("checkpoint", "diffusion model")
)

# Fixed, so that every process (and every version of this module) derives the same id.
_WARMUP_NAMESPACE = uuid.UUID("5b0c7a3e-2f4d-5c1a-9e8b-6d7f0a1b2c3d")

# /system_stats fields that describe an installation and its machine: they change when a
# restart brings another version, other arguments or other devices, and never between two
# calls (unlike ram_free, vram_free or torch_vram_total, which move all the time). A restart
# that changes none of them is still seen: the history forgets the warm-up.
_BOOT_SYSTEM_FIELDS = (
    "os",
    "ram_total",
    "comfyui_version",
    "required_frontend_version",
    "installed_templates_version",
    "required_templates_version",
    "comfy_package_versions",
    "python_version",
    "pytorch_version",
    "embedded_python",
    "deploy_environment",
    "argv",
)
_BOOT_DEVICE_FIELDS = ("name", "type", "index", "vram_total")


def model_key(graph: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The sorted checkpoint and diffusion-model names ``graph``'s loader nodes name."""
    names: set[str] = set()
    for node in (graph or {}).values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for name in AFFINITY_INPUTS.intersection(inputs):
            value = inputs[name]
            value = value.get("__value__") if isinstance(value, Mapping) else value
            if isinstance(value, str) and value:
                names.add(value)
    return tuple(sorted(names))


def boot_signature(stats: Mapping[str, Any]) -> str:
    """A short digest of the ``/system_stats`` fields that only a restart can change."""
    system = stats.get("system") if isinstance(stats.get("system"), Mapping) else {}
    devices = [
        {k: d.get(k) for k in _BOOT_DEVICE_FIELDS}
        for d in stats.get("devices") or []
        if isinstance(d, Mapping)
    ]
    return checksum({"system": {k: system.get(k) for k in _BOOT_SYSTEM_FIELDS}, "d": devices})[:16]


def warmup_prompt_id(graph: Mapping[str, Any]) -> str:
    """The warm-up's prompt id: a UUID derived from the graph, the same in every process.

    It must be a UUID: newer ComfyUI refuses any other client-supplied prompt_id with HTTP 400
    ("prompt_id must be a valid UUID", type ``invalid_prompt_id``); its ``post_prompt`` in
    server.py passes the id to ``validate_job_id`` (comfy_execution/jobs.py), which demands
    ``str(uuid.UUID(value)) == value``, i.e. the canonical lowercase hyphenated form that
    ``str(uuid.UUID)`` gives. ComfyUI 0.3.64 still took any string.
    """
    return str(uuid.uuid5(_WARMUP_NAMESPACE, checksum(dict(graph))))


class _Backend:
    def __init__(self, url: str, headers: dict[str, str], probe: ComfyClient):
        self.url = url
        self.headers = headers
        self.probe = probe  # health, capabilities and warm-up submissions; never waits
        # Capabilities are re-read early when they may be out of date: the backend refused a
        # graph they said it could run, or it lacked something a while ago (a model may have
        # been copied there since).
        self.recheck = False
        self.lacked_at: float | None = None


class BackendPool:
    """Chooses among ComfyUI backends.

    ``backends`` are URLs or ``BackendSpec``s; ``headers`` maps a URL to extra headers for it.
    ``name`` names the pool in messages (``NoBackendReady.summary()``). ``state`` is where the
    pool keeps what it learns: ``MemoryState()`` (this object only) by default, or a
    ``RedisState`` shared by every process of a deployment.
    ``timeout`` is for clients handed out by ``client()``; ``probe_timeout`` for the pool's own
    health and capability requests, kept short so one hung host does not stall ``choose()``.
    ``warmup_graph``: an API-format graph that must have run on a backend (since it started)
    before the backend is ready; with ``auto_warm`` the pool queues it on a cold backend itself.
    Prefer a warm-up that ends in PreviewImage, so it leaves no files in output/.
    Backoff after a failure: ``backoff_base * 2**(n-1)`` seconds for the n-th in a row, at most
    ``backoff_cap``. ``affinity``/``affinity_slack``: see ``choose``. ``queue_ttl``: reuse a
    queue length read (by any process sharing the state) less than that many seconds ago;
    0 reads it on every ``choose()``. ``clock`` gives wall-clock seconds: the state may be
    shared between processes, whose monotonic clocks do not agree.
    Methods take a lock, but probes are serial: use one pool per process.
    """

    def __init__(
        self,
        backends: Iterable[str | BackendSpec],
        *,
        name: str = "",
        state: PoolState | None = None,
        headers: Mapping[str, Mapping[str, str]] | None = None,
        timeout: float = 30.0,
        probe_timeout: float = 5.0,
        warmup_graph: Mapping[str, Any] | None = None,
        auto_warm: bool = True,
        capabilities_ttl: float = 300.0,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        affinity: bool = True,
        affinity_slack: int = 1,
        queue_ttl: float = 0.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.name = name
        self.state: PoolState = state if state is not None else MemoryState()
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.warmup_graph = dict(warmup_graph) if warmup_graph else None
        self.warmup_id = warmup_prompt_id(self.warmup_graph) if self.warmup_graph else None
        self.auto_warm = auto_warm
        self.capabilities_ttl = capabilities_ttl
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.affinity = affinity
        if affinity_slack < 0:
            raise ValueError("affinity_slack cannot be negative")
        self.affinity_slack = affinity_slack
        self.queue_ttl = queue_ttl
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

    def choose(
        self,
        graph: Mapping[str, Any] | None = None,
        *,
        wait: float = 0.0,
        max_queue: int | None = None,
    ) -> str:
        """The URL of a ready backend for ``graph``; raises ``NoBackendReady`` if none is.

        ``max_queue``: the backend the graph should go to (by the rules below, among every
        ready backend) is returned only if its queue (running + pending) holds at most that
        many prompts; otherwise ``PoolFull`` (a ``NoBackendReady``) is raised, rather than
        another backend with room chosen, which could be one that must switch models.
        Submitting ahead uses it to keep each backend one prompt ahead, no more.

        Without affinity (or for a graph that names no checkpoint or diffusion model): the
        lowest ``queue_remaining``, ties at random. With ``affinity``, a backend whose last
        submitted model (see ``note_submitted``) is the graph's wins, as long as its queue is
        at most ``affinity_slack`` prompts longer than the shortest; when none qualifies, the
        shortest queue wins, a backend with no model recorded before one that would switch.

        Why a slack of 1 by default: switching checkpoints costs a few seconds on a GPU
        (reading gigabytes and moving them to VRAM), about what one generation takes, so
        waiting behind one more prompt roughly pays for itself, while waiting behind two costs
        more than the switch saves. And no workflow can starve: a prompt is never placed more
        than ``affinity_slack`` prompts behind the shortest ready queue, whatever other
        workflows keep arriving. 0 means affinity only breaks ties.

        With ``wait`` > 0, keeps looking that many seconds (for a warm-up to finish, a backend
        to come back). ``NoBackendReady`` names why each backend is not ready.
        """
        deadline = self.clock() + wait
        while True:
            statuses = self.status(graph)
            ready = [s for s in statuses if s.ready]
            if ready:
                # The backends the graph should go to, by queue and model, among every ready
                # one; max_queue only says whether it may go there now. Filtering first
                # would send a prompt ahead to a backend that must switch models while the
                # one holding them is busy: seconds lost to save a fraction of one run.
                chosen = self._candidates(ready, model_key(graph))
                if max_queue is not None:
                    depth = {s.url: s.queue_remaining or 0 for s in ready}
                    chosen = [url for url in chosen if depth[url] <= max_queue]
                    if not chosen:
                        raise PoolFull(statuses, pool_name=self.name)
                return self.rng.choice(chosen)
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise NoBackendReady(statuses, pool_name=self.name)
            time.sleep(min(0.2, remaining))

    def _candidates(self, ready: list[BackendStatus], key: tuple[str, ...]) -> list[str]:
        def queued(s: BackendStatus) -> int:
            return s.queue_remaining or 0

        shortest = min(queued(s) for s in ready)
        lowest = [s for s in ready if queued(s) == shortest]
        if not (self.affinity and key):
            return [s.url for s in lowest]
        same = [s for s in ready if s.model == key and queued(s) <= shortest + self.affinity_slack]
        if same:
            best = min(queued(s) for s in same)
            return [s.url for s in same if queued(s) == best]
        fresh = [s for s in lowest if not s.model]
        return [s.url for s in fresh or lowest]

    def status(self, graph: Mapping[str, Any] | None = None) -> list[BackendStatus]:
        """Every backend's state for ``graph`` (probing those not backing off).

        Never raises for a backend's sake; a ``RedisState`` whose Redis is unreachable raises
        the Redis client's error (nothing is known then).
        """
        with self._lock:
            states = self.state.load(self.urls)
            return [self._survey(b, states[b.url], graph) for b in self._backends.values()]

    def _survey(
        self, b: _Backend, st: BackendState, graph: Mapping[str, Any] | None
    ) -> BackendStatus:
        now = self.clock()

        def status(state: str, reason: str = "", **fields: Any) -> BackendStatus:
            fields.setdefault("failures", st.failures)
            return BackendStatus(b.url, state, reason, model=st.last_model, **fields)

        if now < st.retry_at:
            reason = f"down ({st.last_error}); next try in {st.retry_at - now:.1f}s"
            return status(DOWN, reason, error=st.last_error)
        restarted = False
        try:
            if now >= st.healthy_until:
                queued, restarted = self._health_check(b, now)
            elif (
                self.queue_ttl
                and st.queue_remaining is not None
                and (now - st.queue_read_at < self.queue_ttl)
            ):
                queued = st.queue_remaining
            else:
                queued = b.probe.queue_remaining()
                self.state.record_queue(b.url, queued, now=now)
        except ComfyError as exc:
            return status(DOWN, f"down ({exc})", error=str(exc), failures=self._fail(b, exc))
        if st.failures or st.last_error:
            self.state.record_success(b.url)
        ok: dict[str, Any] = {"failures": 0, "queue_remaining": queued}
        try:
            capabilities = b.probe.capabilities(refresh=restarted or b.recheck)
            b.recheck = False
            problems = capabilities.missing_for(graph) if graph else []
            if problems and b.lacked_at is not None and now - b.lacked_at >= INCAPABLE_RECHECK:
                capabilities = b.probe.capabilities(refresh=True)
                problems = capabilities.missing_for(graph)
                b.lacked_at = None
            if problems and b.lacked_at is None:
                b.lacked_at = now
            missing = [missing_item(p) for p in problems]
            if self.warmup_graph:
                for problem in capabilities.missing_for(self.warmup_graph):
                    problems.append(f"warm-up workflow: {problem}")
                    missing.append(f"{missing_item(problem)} (for the warm-up workflow)")
        except ComfyError as exc:
            error = f"GET /object_info: {exc}"
            return status(DOWN, f"down ({error})", error=error, failures=self._fail(b, exc))
        if problems:
            return status(INCAPABLE, "; ".join(problems), missing=tuple(missing), **ok)
        if self.warmup_graph:
            state, reason = self._warm_state(b, st, now)
            if state == DOWN:
                ok["failures"], ok["error"] = self._fail(b, reason), reason
                return status(DOWN, f"down ({reason})", **ok)
            if state != READY:
                return status(state, reason, **ok)
        return status(READY, **ok)

    def _health_check(self, b: _Backend, now: float) -> tuple[int, bool]:
        """``/system_stats`` and the queue length; True when the boot signature changed."""
        stats = b.probe.system_stats()
        if not isinstance(stats, dict) or not isinstance(stats.get("system"), dict):
            raise ComfyUnavailable("answers, but not like ComfyUI does")
        queued = b.probe.queue_remaining()
        boot = boot_signature(stats)
        previous = self.state.record_health(
            b.url, boot=boot, healthy_until=now + HEALTH_TTL, queued=queued, now=now
        )
        if not previous or previous == boot:
            return queued, False
        log.info("backend %s restarted (its /system_stats changed)", b.url)
        self.state.record_loaded(b.url, ())
        if self.warmup_id:
            # Only the process that saw the change gets here (the swap is atomic): it makes
            # the warm-up run again even where something kept the old history entry.
            with contextlib.suppress(ComfyError):
                b.probe.delete_history(self.warmup_id)
            self.state.release_warmup(b.url)
        return queued, True

    def _delay(self, failures: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1))

    def _fail(self, b: _Backend, error: Exception | str) -> int:
        failures, retry_at = self.state.record_failure(
            b.url, str(error), now=self.clock(), delay=self._delay
        )
        log.info("backend %s failed (%s); next try in %.1fs", b.url, error, retry_at - self.clock())
        return failures

    # -- warm-up -------------------------------------------------------------------------

    def _warm_state(self, b: _Backend, st: BackendState, now: float) -> tuple[str, str]:
        """READY, WARMING, COLD, INCAPABLE or DOWN (the caller backs off) with a reason."""
        assert self.warmup_id is not None and self.warmup_graph is not None
        try:
            where = b.probe.locate(self.warmup_id)
            if where is not None and st.warming_until:
                # The claim has served: after a restart, the next cold look may claim again.
                self.state.release_warmup(b.url)
            if where == "done":
                failure = self._warmup_failure(b)
                if failure is None:
                    return READY, ""
                # Forget the failed run, so the next try after the backoff runs it again.
                with contextlib.suppress(ComfyError):
                    b.probe.delete_history(self.warmup_id)
                self.state.release_warmup(b.url)
                return DOWN, f"warm-up failed: {failure}"
            if where in ("running", "pending"):
                return WARMING, f"warming up (warm-up {where})"
            if not self.auto_warm:
                return COLD, "not warmed up (run pool.warm_up())"
            # One process queues it; the others see it pending at their next look. The claim
            # outlasts one submission (its timeout, then the grace for an ambiguous reply), so
            # a process that dies while submitting holds it up no longer than that.
            until = now + 2 * self.probe_timeout + 5
            if not self.state.claim_warmup(b.url, now=now, until=until):
                return WARMING, "warming up (warm-up being queued)"
            try:
                b.probe.submit(
                    self.warmup_graph, prompt_id=self.warmup_id, skip_if_known=True, follow=False
                )
            except ComfyError:
                self.state.release_warmup(b.url)
                raise
            # A cold backend has just started: the warm-up's model is all it will hold.
            self.state.record_loaded(b.url, model_key(self.warmup_graph))
            return WARMING, "warming up (warm-up queued now)"
        except WorkflowRejected as exc:
            return INCAPABLE, f"warm-up workflow rejected ({exc})"
        except ComfyError as exc:
            return DOWN, str(exc)

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
                state = self._survey(b, self.state.load([b.url])[b.url], None)
            if url is None and state.state not in (COLD, WARMING):
                continue
            started = time.monotonic()
            with self.client(b.url, timeout=self.probe_timeout) as client:
                client.submit(self.warmup_graph, prompt_id=self.warmup_id, skip_if_known=True)
                client.wait(self.warmup_id, timeout=timeout)
            if state.state == COLD:
                self.state.record_loaded(b.url, model_key(self.warmup_graph))
            took[b.url] = round(time.monotonic() - started, 3)
        return took

    # -- what callers saw ----------------------------------------------------------------

    def note_submitted(self, url: str, graph: Mapping[str, Any]) -> tuple[str, ...]:
        """``graph`` was just submitted to ``url``: remember its model key for affinity (and
        count it into the queue reading ``queue_ttl`` may reuse). Returns the key."""
        key = model_key(graph)
        self.state.record_submitted(self._backend(url).url, key)
        return key

    def report_failure(self, url: str, error: BaseException | None = None) -> bool:
        """A run on ``url`` failed: back off from it. Returns whether it counted.

        Only errors that say the backend is unwell count (unreachable, 5xx, forgot a prompt,
        refused credentials); a rejected workflow or a failing node is not the backend's fault.
        """
        if isinstance(error, WorkflowRejected):
            # Refused what the cached /object_info said it could run: read it again.
            b = self._backends.get(split_credentials(url)[0])
            if b is not None:
                b.recheck = True
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
                self.state.record_success(b.url)

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
