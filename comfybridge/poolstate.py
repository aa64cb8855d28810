"""Where a ``BackendPool`` keeps what it learned about each backend.

A pool runs in every web and worker process, and a forking RQ worker even starts a fresh
process per job. Kept in the pool object, a backoff learned by one job would be forgotten by
the next one, and each process would find a dead backend again by itself. ``RedisState`` keeps
the same facts in Redis, so every process of a deployment shares one picture; ``MemoryState``
keeps them in the process, for scripts and tests.

Times are wall-clock epoch seconds (``time.time()``), not monotonic ones: a monotonic clock's
zero differs between processes (and hosts), so a ``retry_at`` written by one would mean nothing
to another. Hosts sharing one Redis need clocks that agree to well under a second (NTP).

The stores hold facts, not policy: the pool computes each backoff delay and passes it in.
Every write that others may race with is one atomic Redis operation (a script or a
MULTI pipeline), so two processes failing at once count two failures, never one.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class BackendState:
    """What the pool knows about one backend, as of one read of the store.

    ``retry_at``, ``healthy_until``, ``queue_read_at`` and ``warming_until`` are epoch seconds.
    ``last_model`` is the model key (sorted checkpoint and diffusion-model names) of the last
    prompt submitted there, ``()`` when none was recorded. ``boot`` is the boot signature last
    seen in the backend's ``/system_stats`` (see ``pool.boot_signature``).
    """

    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    healthy_until: float = 0.0
    queue_remaining: int | None = None
    queue_read_at: float = 0.0
    last_model: tuple[str, ...] = ()
    boot: str = ""
    warming_until: float = 0.0


class PoolState(Protocol):
    """The store interface ``BackendPool`` uses; ``url`` is a backend URL without credentials."""

    def load(self, urls: Sequence[str]) -> dict[str, BackendState]:
        """Every listed backend's state, read together (one round trip for Redis)."""
        ...

    def record_failure(
        self, url: str, error: str, *, now: float, delay: Callable[[int], float]
    ) -> tuple[int, float]:
        """Count one more failure in a row; ``delay(n)`` gives the backoff for the n-th.

        Sets ``retry_at = now + delay(n)``, ``last_error`` and forgets ``healthy_until``;
        returns ``(failures, retry_at)``. Atomic: concurrent failures each count.
        """
        ...

    def record_success(self, url: str) -> None:
        """Forget the failures, the backoff and the last error."""
        ...

    def record_health(
        self, url: str, *, boot: str, healthy_until: float, queued: int, now: float
    ) -> str:
        """A full health check passed: store its boot signature and queue length.

        Returns the boot signature stored before (``""`` if none), swapped atomically, so of
        several processes seeing a restart at once exactly one sees the old signature.
        """
        ...

    def record_queue(self, url: str, queued: int, *, now: float) -> None:
        """Store a fresh ``queue_remaining`` reading."""
        ...

    def record_submitted(self, url: str, model: tuple[str, ...]) -> None:
        """A prompt was submitted: count it into the queue reading; remember its model key
        (unless it is empty: a graph that loads no model leaves the loaded one in place)."""
        ...

    def record_loaded(self, url: str, model: tuple[str, ...]) -> None:
        """The backend started afresh and holds ``model`` now (``()``: nothing)."""
        ...

    def claim_warmup(self, url: str, *, now: float, until: float) -> bool:
        """True for exactly one caller until ``until``: that one queues the warm-up."""
        ...

    def release_warmup(self, url: str) -> None:
        """Drop the claim, so the next survey may queue the warm-up again."""
        ...


def _empty() -> dict[str, Any]:
    return dataclasses.asdict(BackendState())


class MemoryState:
    """Per-process state: what a pool kept in itself before stores existed (the default).

    Several pools of one process may share one (the methods take a lock).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] = {}

    def _get(self, url: str) -> dict[str, Any]:
        return self._states.setdefault(url, _empty())

    def load(self, urls: Sequence[str]) -> dict[str, BackendState]:
        with self._lock:
            return {url: BackendState(**self._get(url)) for url in urls}

    def record_failure(
        self, url: str, error: str, *, now: float, delay: Callable[[int], float]
    ) -> tuple[int, float]:
        with self._lock:
            state = self._get(url)
            state["failures"] += 1
            state.update(
                retry_at=now + delay(state["failures"]), last_error=error, healthy_until=0.0
            )
            return state["failures"], state["retry_at"]

    def record_success(self, url: str) -> None:
        with self._lock:
            self._get(url).update(failures=0, retry_at=0.0, last_error="")

    def record_health(
        self, url: str, *, boot: str, healthy_until: float, queued: int, now: float
    ) -> str:
        with self._lock:
            state = self._get(url)
            previous = state["boot"]
            state.update(
                boot=boot, healthy_until=healthy_until, queue_remaining=queued, queue_read_at=now
            )
            return previous

    def record_queue(self, url: str, queued: int, *, now: float) -> None:
        with self._lock:
            self._get(url).update(queue_remaining=queued, queue_read_at=now)

    def record_submitted(self, url: str, model: tuple[str, ...]) -> None:
        with self._lock:
            state = self._get(url)
            state["queue_remaining"] = (state["queue_remaining"] or 0) + 1
            if model:
                state["last_model"] = tuple(model)

    def record_loaded(self, url: str, model: tuple[str, ...]) -> None:
        with self._lock:
            self._get(url)["last_model"] = tuple(model)

    def claim_warmup(self, url: str, *, now: float, until: float) -> bool:
        with self._lock:
            state = self._get(url)
            if state["warming_until"] > now:
                return False
            state["warming_until"] = until
            return True

    def release_warmup(self, url: str) -> None:
        with self._lock:
            self._get(url)["warming_until"] = 0.0


# KEYS[1] the backend's hash; ARGV: now, error, ttl, then the delays for failure 1, 2, ... up
# to the cap (the pool's backoff policy, precomputed, so the script holds no policy of its own).
# Floats go back as strings: Redis would turn a Lua number reply into an integer.
_FAIL = """
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local retry_at = tonumber(ARGV[1]) + tonumber(ARGV[3 + math.min(n, #ARGV - 3)])
local text = string.format('%.6f', retry_at)
redis.call('HSET', KEYS[1], 'retry_at', text, 'last_error', ARGV[2], 'healthy_until', '0')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {n, text}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(fields: dict[str, str], name: str) -> float:
    try:
        return float(fields.get(name) or 0)
    except ValueError:
        return 0.0


class RedisState:
    """Per-backend state in Redis hashes ``<prefix><url>``, shared by every process.

    ``redis`` is a ``redis.Redis`` (or anything with its ``pipeline``, ``register_script``,
    ``hgetall``, ``hset`` and ``set``); responses may be bytes or decoded. Give each pool its own
    ``prefix`` (the convention: ``comfy:pool:<pool name>:``). Each hash expires ``ttl`` seconds
    after its last write, so a backend removed from the configuration leaves nothing behind.
    Redis being unreachable raises the client's own error: the pool does not pretend to know.
    """

    def __init__(self, redis: Any, prefix: str = "comfy:pool:default:", *, ttl: int = 604800):
        self.redis = redis
        self.prefix = prefix
        self.ttl = int(ttl)
        self._fail = redis.register_script(_FAIL)

    def key(self, url: str) -> str:
        return f"{self.prefix}{url}"

    def load(self, urls: Sequence[str]) -> dict[str, BackendState]:
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.hgetall(self.key(url))
        return {url: self._parse(raw) for url, raw in zip(urls, pipe.execute(), strict=True)}

    @staticmethod
    def _parse(raw: dict) -> BackendState:
        fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
        queued = fields.get("queue_remaining")
        try:
            model = tuple(json.loads(fields["last_model"])) if fields.get("last_model") else ()
        except (ValueError, TypeError):
            model = ()
        return BackendState(
            failures=int(_number(fields, "failures")),
            retry_at=_number(fields, "retry_at"),
            last_error=fields.get("last_error", ""),
            healthy_until=_number(fields, "healthy_until"),
            queue_remaining=int(float(queued)) if queued not in (None, "") else None,
            queue_read_at=_number(fields, "queue_read_at"),
            last_model=model,
            boot=fields.get("boot", ""),
            warming_until=_number(fields, "warming_until"),
        )

    def _write(self, url: str, mapping: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key(url), mapping=mapping)
        pipe.expire(self.key(url), self.ttl)
        pipe.execute()

    def record_failure(
        self, url: str, error: str, *, now: float, delay: Callable[[int], float]
    ) -> tuple[int, float]:
        # Delays for n = 1.. until they stop growing (the cap): the script picks the n-th.
        delays = [delay(1)]
        while len(delays) < 64 and delay(len(delays) + 1) > delays[-1]:
            delays.append(delay(len(delays) + 1))
        args = [repr(now), error, str(self.ttl), *(repr(float(d)) for d in delays)]
        failures, retry_at = self._fail(keys=[self.key(url)], args=args)
        return int(failures), float(_text(retry_at))

    def record_success(self, url: str) -> None:
        self._write(url, {"failures": 0, "retry_at": 0, "last_error": ""})

    def record_health(
        self, url: str, *, boot: str, healthy_until: float, queued: int, now: float
    ) -> str:
        key = self.key(url)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(key, "boot")
        pipe.hset(
            key,
            mapping={
                "boot": boot,
                "healthy_until": repr(healthy_until),
                "queue_remaining": queued,
                "queue_read_at": repr(now),
            },
        )
        pipe.expire(key, self.ttl)
        previous = pipe.execute()[0]
        return _text(previous) if previous is not None else ""

    def record_queue(self, url: str, queued: int, *, now: float) -> None:
        self._write(url, {"queue_remaining": queued, "queue_read_at": repr(now)})

    def record_submitted(self, url: str, model: tuple[str, ...]) -> None:
        key = self.key(url)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "queue_remaining", 1)
        if model:
            pipe.hset(key, "last_model", json.dumps(list(model)))
        pipe.expire(key, self.ttl)
        pipe.execute()

    def record_loaded(self, url: str, model: tuple[str, ...]) -> None:
        self._write(url, {"last_model": json.dumps(list(model)) if model else ""})

    def claim_warmup(self, url: str, *, now: float, until: float) -> bool:
        # A key of its own: SET NX PX is the one atomic test-and-set with an expiry, so a
        # process that dies after claiming blocks the others only until the claim runs out.
        ms = max(1, int((until - now) * 1000))
        if not self.redis.set(f"{self.key(url)}:warming", "1", nx=True, px=ms):
            return False
        self._write(url, {"warming_until": repr(until)})
        return True

    def release_warmup(self, url: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(f"{self.key(url)}:warming")
        pipe.hset(self.key(url), "warming_until", 0)
        pipe.execute()
