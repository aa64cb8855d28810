"""The one place that builds comfybridge objects from Django settings.

Each process (web server, each worker) gets one ``BackendPool`` per configured pool, built on
first use and rebuilt if the settings change (tests override them). What routing depends on
(health, backoff, readiness, queue depth, the last checkpoint per backend) is kept in Redis by
the pools' state store, so every process sees the same picture. Credentials can be given in
the URLs (``http://user:pass@host:8188``); they are never part of the URL returned.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from comfybridge.client import ComfyClient, split_credentials
from comfybridge.contract import checksum
from comfybridge.pool import BackendPool
from comfybridge.poolstate import RedisState
from reviewapp.lib import pools as pool_config

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pools: dict[str, tuple[tuple, BackendPool]] = {}


def _warmup_graph() -> dict | None:
    # Optional: an API-format workflow every backend runs once after it starts.
    path = settings.COMFYUI_WARMUP_WORKFLOW
    return json.loads(Path(path).read_text("utf-8")) if path else None


def pool(name: str) -> BackendPool:
    """This process's ``BackendPool`` of pool ``name`` (``UnknownPool`` if not configured)."""
    urls = pool_config.backends_of(name)
    key = (
        urls,
        settings.COMFYUI_TIMEOUT,
        settings.COMFYUI_WARMUP_WORKFLOW,
        settings.COMFYUI_AFFINITY,
        settings.COMFYUI_AFFINITY_SLACK,
        settings.POOL_STATE_PREFIX,
    )
    with _lock:
        cached = _pools.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None:
            cached[1].close()
        built = BackendPool(
            list(urls),
            name=name,
            state=RedisState(redis(), prefix=f"{settings.POOL_STATE_PREFIX}comfy:pool:{name}:"),
            timeout=settings.COMFYUI_TIMEOUT,
            warmup_graph=_warmup_graph(),
            affinity=settings.COMFYUI_AFFINITY,
            affinity_slack=settings.COMFYUI_AFFINITY_SLACK,
        )
        _pools[name] = (key, built)
        return built


def pool_of_backend(url: str) -> str | None:
    """The configured pool that has backend ``url``, if any."""
    bare = split_credentials(url)[0]
    for name in pool_config.pool_names():
        if bare in (split_credentials(u)[0] for u in pool_config.backends_of(name)):
            return name
    return None


def serves(pool_name: str, url: str) -> bool:
    """Whether ``url`` is (still) a backend of ``pool_name``."""
    return pool_of_backend(url) == pool_name


def choose(pool_name: str, graph: Mapping[str, Any], *, max_queue: int | None = None) -> str:
    """The backend of ``pool_name`` that should run ``graph`` now; with ``max_queue``, only
    one whose ComfyUI queue (running + pending) holds at most that many prompts.

    Raises ``NoBackendReady`` (naming why, per backend) when none can: the caller keeps the
    generation queued with that reason instead of trying a backend that would refuse it.
    """
    return pool(pool_name).choose(graph, max_queue=max_queue)


def client_for(url: str) -> ComfyClient:
    """A client for ``url`` with its credentials; the caller closes it."""
    name = pool_of_backend(url)
    if name is None:
        # A backend no longer configured (a row from before a settings change).
        return ComfyClient(split_credentials(url)[0], timeout=settings.COMFYUI_TIMEOUT)
    return pool(name).client(url)


# One client per backend per process, reused job after job: its HTTP connections and
# its websocket (one client_id per process, as ComfyUI expects) stay open between runs.
# A worker runs one job at a time, so nothing else uses a client while a job does.
_shared: dict[str, ComfyClient] = {}


def shared_client(url: str) -> ComfyClient:
    """This process's client for ``url``; do not close it (see ``drop_shared_client``)."""
    client = _shared.get(url)
    if client is None:
        client = _shared[url] = client_for(url)
    return client


def drop_shared_client(url: str) -> None:
    """Close and forget the client for ``url`` (after it failed), so the next job starts
    with fresh connections."""
    client = _shared.pop(url, None)
    if client is not None:
        client.close()


def report_failure(url: str, error: BaseException | None = None) -> bool:
    """Tell the pool of ``url`` that a run there failed (backend errors only count)."""
    name = pool_of_backend(url)
    return pool(name).report_failure(url, error) if name else False


def report_success(url: str) -> None:
    name = pool_of_backend(url)
    if name:
        pool(name).report_success(url)


# backend URL -> (fetched at, object_info, ComfyUI version). Per process: a worker runs
# many jobs against the same few backends, and their node catalogue rarely changes.
_BACKEND_INFO: dict[str, tuple[float, dict, str]] = {}
BACKEND_INFO_TTL = 300.0


def backend_fingerprint(client: ComfyClient, graph: dict) -> tuple[str, str]:
    """sha256 over the backend's object_info entries of the classes this graph uses
    and its ComfyUI version: two runs with the same fingerprint ran the same nodes."""
    cached = _BACKEND_INFO.get(client.base_url)
    if cached is None or time.monotonic() - cached[0] > BACKEND_INFO_TTL:
        stats = client.system_stats()
        version = str(stats.get("system", {}).get("comfyui_version", ""))
        cached = (time.monotonic(), client.object_info(), version)
        _BACKEND_INFO[client.base_url] = cached
    _, object_info, version = cached
    classes = sorted({node.get("class_type", "") for node in graph.values()})
    payload = {"comfyui_version": version, "nodes": {c: object_info.get(c) for c in classes}}
    return checksum(payload), version


_redis: dict[str, Any] = {}


def redis():
    """The Redis connection of the queues: submission locks and the pools' shared state
    live beside the jobs they are about. One client per process (django_rq builds a new
    connection pool on every call, a TCP handshake per lock)."""
    import django_rq

    name = next(iter(settings.RQ_QUEUES))
    key = repr(sorted(settings.RQ_QUEUES[name].items()))
    client = _redis.get(key)
    if client is None:
        client = _redis[key] = django_rq.get_connection(name)
    return client


def note_submitted(pool_name: str, url: str, graph: Mapping[str, Any]) -> None:
    """Tell the pool which models ``url`` will have loaded once this prompt runs (affinity)."""
    pool(pool_name).note_submitted(url, graph)


def ready_count(pool_name: str) -> int:
    """How many backends of the pool are not backing off after a failure, from the state
    the pool shares in Redis (no backend is asked)."""
    try:
        shared = pool(pool_name)
    except pool_config.UnknownPool:
        return 0
    now = time.time()
    states = shared.state.load(shared.urls)
    return sum(1 for state in states.values() if state.failures == 0 or state.retry_at <= now)
