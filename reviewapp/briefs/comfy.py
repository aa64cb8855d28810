"""The one place that builds comfybridge objects from Django settings.

Each process (web server, each worker) gets one ``BackendPool``, built on first use from
``COMFYUI_URLS`` and rebuilt if those settings change (tests override them). Credentials can be
given in the URLs (``http://user:pass@host:8188``); they are never part of the URL returned.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from comfybridge.client import ComfyClient, split_credentials
from comfybridge.pool import BackendPool, NoBackendReady

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: BackendPool | None = None
_pool_key: tuple | None = None


def backend_urls() -> list[str]:
    """The configured backends as ``choose_backend`` names them (no credentials)."""
    return [split_credentials(url)[0] for url in settings.COMFYUI_URLS]


def _warmup_graph() -> dict | None:
    # Optional: an API-format workflow every backend runs once after it starts.
    path = getattr(settings, "COMFYUI_WARMUP_WORKFLOW", "")
    return json.loads(Path(path).read_text("utf-8")) if path else None


def pool() -> BackendPool:
    """This process's pool of the configured backends."""
    global _pool, _pool_key
    key = (
        tuple(settings.COMFYUI_URLS),
        settings.COMFYUI_TIMEOUT,
        getattr(settings, "COMFYUI_WARMUP_WORKFLOW", ""),
    )
    with _lock:
        if _pool is None or _pool_key != key:
            if _pool is not None:
                _pool.close()
            _pool = BackendPool(
                list(settings.COMFYUI_URLS),
                timeout=settings.COMFYUI_TIMEOUT,
                warmup_graph=_warmup_graph(),
            )
            _pool_key = key
        return _pool


def choose_backend(graph: Mapping[str, Any] | None = None) -> str:
    """The ready backend with the shortest queue (able to run ``graph`` when given).

    When none is ready, the least bad one is returned anyway and the reason logged: the run then
    fails there with the backend's own error (unreachable: retried; missing model: rejected),
    through the caller's usual failure handling.
    """
    backends = pool()
    try:
        return backends.choose(graph)
    except NoBackendReady as exc:
        fallback = _least_bad(exc)
        logger.warning("%s; trying %s anyway", exc, fallback)
        return fallback


def _least_bad(exc: NoBackendReady) -> str:
    rank = {"warming": 0, "cold": 1, "down": 2, "incapable": 3}
    best = min(exc.statuses, key=lambda s: (rank.get(s.state, 4), s.failures))
    return best.url


def client_for(url: str) -> ComfyClient:
    """A client for ``url`` with its credentials; the caller closes it."""
    try:
        return pool().client(url)
    except KeyError:
        # A backend no longer configured (a row from before a settings change).
        return ComfyClient(split_credentials(url)[0], timeout=settings.COMFYUI_TIMEOUT)


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
    """Tell this process's pool that a run on ``url`` failed (backend errors only count)."""
    return pool().report_failure(url, error)


def report_success(url: str) -> None:
    pool().report_success(url)
