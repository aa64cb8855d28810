"""A client of the ComfyUI HTTP + websocket API (ComfyUI 0.3.64, see PROTOCOL.md).

The rules it follows, and why:

- Every prompt is submitted with a prompt_id chosen by the caller, and the client's client_id,
  so the caller can store the id before the POST and find the prompt again after any failure.
- The websocket is connected *before* the POST: ComfyUI routes a prompt's messages to the socket
  of its client_id, and can send the first ones before the POST's reply arrives. Messages for
  prompts the client is not waiting on yet are buffered, not dropped.
- The websocket is only a hint. The outcome of a prompt is read from ``/history/{id}``, which
  ComfyUI writes before the prompt's last message. Outputs come from the history entry, never from
  ``executed`` events (those replay stale outputs of cached nodes).
- A POST that fails ambiguously (timeout, reset, 5xx) may have been accepted. ComfyUI does not
  deduplicate prompt ids: posting again would run the prompt twice. The client looks the id up
  in ``/queue`` and ``/history`` first.
- ComfyUI keeps queue and history in memory. A prompt missing from both after a grace period was
  lost in a restart: ``PromptLost``, which is retryable.

- A backend behind a proxy gets the same headers on every request and on the websocket
  upgrade. Credentials in the URL (``http://user:pass@host``) become a basic-auth header and are
  removed from the URL, so they never appear in logs or stored backend names.

A ``ComfyClient`` is not thread-safe: use one per thread (each has its own session and socket).

This module is the facade: the HTTP routes, submitting and cancelling. The rest lives beside it,
and the names callers use are re-exported here (``__all__``):

- ``values``: ImageRef, OutputImage, Progress, RunResult, Health, ... and their parsing;
- ``auth``: credentials (bearer, basic, in the URL) and ``AuthRejected``;
- ``transport``: the HTTP session, and how replies become errors;
- ``files``: content-named uploads, bounded downloads;
- ``history``: the queue and history lookups, the wait loop, deciding an outcome;
- ``progress``: the progress estimate from websocket messages;
- ``ws``: the websocket, its bounded frames and the messages buffered per prompt.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from . import files
from . import history as _history
from .auth import AuthRejected, basic_auth, bearer_auth, merge_headers, split_credentials
from .capabilities import BackendIncapable, Capabilities
from .contract import Contract
from .errors import ComfyError, ComfyUnavailable, WorkflowRejected
from .files import DEFAULT_MAX_DOWNLOAD
from .progress import ProgressTracker
from .transport import Transport, never_connected
from .values import (
    Device,
    Health,
    ImageRef,
    OutputImage,
    Progress,
    RunResult,
    outputs_from_history,
    queue_remaining_of,
    rejection_messages,
)
from .ws import Follower

__all__ = [
    "DEFAULT_MAX_DOWNLOAD",
    "DEFAULT_MAX_FRAME",
    "AuthRejected",
    "ComfyClient",
    "Device",
    "Health",
    "ImageRef",
    "OutputImage",
    "Progress",
    "RunResult",
    "basic_auth",
    "bearer_auth",
    "outputs_from_history",
    "rejection_messages",
    "split_credentials",
]

DEFAULT_MAX_FRAME = 16 * 1024 * 1024


class ComfyClient:
    """One ComfyUI backend: an HTTP session and (lazily) one websocket.

    ``headers`` are sent with every request and the websocket handshake (for a proxy's auth);
    credentials in ``base_url`` become a basic-auth header (``ValueError`` if ``headers`` has
    an Authorization too). ``https`` URLs use ``wss`` for the websocket; ``verify`` is False
    or a CA bundle path for a proxy with a private certificate. ``timeout`` bounds each HTTP
    request and the websocket handshake, in seconds. ``capabilities_ttl`` is how long the
    ``/object_info`` answer is reused by ``capabilities()`` and ``check_can_run()``.
    ``max_frame_bytes`` bounds a websocket frame or message: a bigger one drops the socket
    (progress is then read less often, the outcome as usual from the history). Settings are
    fixed when the client is made: its session and websocket follower are built with them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        client_id: str | None = None,
        poll_interval: float = 2.0,
        lost_grace: float = 3.0,
        recv_timeout: float = 0.5,
        ping_interval: float = 20.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME,
        verify: bool | str = True,
        capabilities_ttl: float = 300.0,
    ):
        bare, headers = merge_headers(base_url, headers)
        parts = urlsplit(bare)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {bare!r}")
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.client_id = client_id or uuid.uuid4().hex
        self.ws_url = urlunsplit(
            (ws_scheme, parts.netloc, f"{parts.path}/ws", f"clientId={self.client_id}", "")
        )
        self.headers = headers
        self.verify = verify
        self.capabilities_ttl = capabilities_ttl
        self._capabilities: tuple[float, Capabilities] | None = None
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.lost_grace = lost_grace
        self.recv_timeout = recv_timeout
        self.ping_interval = ping_interval
        self.max_frame_bytes = max_frame_bytes
        self._http = Transport(self.base_url, headers=headers, verify=verify, timeout=timeout)
        self.session = self._http.session
        self._follower = Follower(
            self.ws_url,
            base_url=self.base_url,
            headers=self.headers,
            timeout=timeout,
            recv_timeout=recv_timeout,
            ping_interval=ping_interval,
            max_frame_bytes=max_frame_bytes,
            verify=verify,
        )

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the websocket and the HTTP session."""
        self._follower.close()
        self._http.close()

    # -- HTTP ----------------------------------------------------------------------------

    def system_stats(self) -> dict:
        return self._http.json("GET", "/system_stats")

    def queue_remaining(self) -> int:
        """``GET /prompt``: prompts pending plus running. One small request."""
        remaining = queue_remaining_of(self._http.json("GET", "/prompt"))
        if remaining is None:
            raise ComfyUnavailable(f"{self.base_url}: GET /prompt did not answer like ComfyUI")
        return remaining

    def health(self) -> Health:
        """``/system_stats`` and ``GET /prompt`` in one small value.

        Raises ``ComfyUnavailable`` when the backend cannot be reached or answers 5xx, and
        ``AuthRejected`` on 401/407.
        """
        started = time.monotonic()
        stats = self._http.json("GET", "/system_stats")
        queue_info = self._http.json("GET", "/prompt")
        latency = (time.monotonic() - started) * 1000
        return Health.from_replies(self.base_url, stats, queue_info, latency)

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """Node classes and model names from ``/object_info``, reused for ``capabilities_ttl``."""
        now = time.monotonic()
        cached = self._capabilities
        if cached is not None and not refresh and now - cached[0] < self.capabilities_ttl:
            return cached[1]
        capabilities = Capabilities(self.object_info(), url=self.base_url)
        self._capabilities = (now, capabilities)
        return capabilities

    def check_can_run(self, graph: Mapping) -> None:
        """Raise ``BackendIncapable`` naming each node class or model ``graph`` needs and this
        backend lacks (e.g. ``checkpoint 'x.safetensors' (node 4,
        CheckpointLoaderSimple.ckpt_name) is not on http://...``).

        A cached answer that finds something missing is refreshed once before raising, so a
        model installed since is seen at once.
        """
        capabilities = self.capabilities()
        if not capabilities.missing_for(graph):
            return
        if self._capabilities is not None and time.monotonic() - self._capabilities[0] > 1.0:
            capabilities = self.capabilities(refresh=True)
        problems = capabilities.missing_for(graph)
        if problems:
            raise BackendIncapable(problems, url=self.base_url)

    def object_info(self) -> dict:
        return self._http.json("GET", "/object_info")

    def queue(self) -> dict:
        """``{"queue_running": [...], "queue_pending": [...]}``; items are 5-element lists."""
        return self._http.json("GET", "/queue")

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a finished prompt, or None (unknown, pending, running, lost)."""
        body = self._http.json("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) else None

    def delete_history(self, prompt_id: str) -> None:
        self._http.request("POST", "/history", json={"delete": [prompt_id]})

    def locate(self, prompt_id: str) -> str | None:
        """Where the backend has this prompt: "running", "pending", "done", or None."""
        return _history.locate(self, prompt_id)

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self,
        graph: Mapping,
        *,
        prompt_id: str | None = None,
        extra_data: Mapping | None = None,
        contract: Contract | None = None,
        skip_if_known: bool = False,
        ambiguous_grace: float = 2.0,
        follow: bool = True,
    ) -> dict:
        """Queue ``graph`` under ``prompt_id`` (a new uuid when None); return /prompt's reply.

        ``skip_if_known=True`` first asks the backend whether it already has this prompt_id
        (use it when retrying a submission whose outcome is unknown). Raises
        ``WorkflowRejected`` (messages name node, input and the ``contract``'s property),
        or ``ComfyUnavailable`` when the backend cannot be reached or certainly did not queue it.
        ``follow=False`` posts without opening the websocket: for a prompt nobody will
        ``wait`` on through this client (``wait`` still works, by polling).
        """
        prompt_id = str(prompt_id or uuid.uuid4())
        if skip_if_known and self.locate(prompt_id) is not None:
            self._follower.watch(prompt_id, len(graph))
            return {"prompt_id": prompt_id, "number": None, "node_errors": {}, "known": True}
        # Connect before posting, so no message of this prompt is sent to nobody.
        if follow:
            self._follower.ensure(quiet=True)
        self._follower.watch(prompt_id, len(graph))
        body: dict[str, Any] = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            response = self.session.post(self._http.url("/prompt"), json=body, timeout=self.timeout)
        except requests.ConnectionError as exc:
            if never_connected(exc):
                raise ComfyUnavailable(f"POST /prompt: {exc}") from exc
            return _history.recover_submission(self, prompt_id, exc, ambiguous_grace)
        except requests.RequestException as exc:
            return _history.recover_submission(self, prompt_id, exc, ambiguous_grace)
        if response.status_code >= 500:
            cause = f"HTTP {response.status_code}"
            return _history.recover_submission(self, prompt_id, cause, ambiguous_grace)
        try:
            reply = response.json()
        except ValueError:
            reply = {}
        self._http.refuse_auth_failure("POST", "/prompt", response.status_code)
        if response.status_code == 400:
            raise WorkflowRejected(
                rejection_messages(reply, graph, contract),
                error=reply.get("error"),
                node_errors=reply.get("node_errors"),
            )
        if response.status_code != 200:
            raise ComfyError(f"POST /prompt: HTTP {response.status_code}")
        if reply.get("node_errors"):
            # ComfyUI runs the valid outputs and drops the invalid ones silently: a partial run
            # is not what was asked for, so stop it and refuse.
            with contextlib.suppress(ComfyError):
                self.cancel(prompt_id)
            raise WorkflowRejected(
                rejection_messages(reply, graph, contract), node_errors=reply["node_errors"]
            )
        reply.setdefault("prompt_id", prompt_id)
        return reply

    def cancel(self, prompt_id: str) -> str:
        """Stop a prompt: remove it if pending, interrupt it if running. Never touches others.

        Returns "deleted", "interrupted" or "not_found".
        """
        self._http.request("POST", "/queue", json={"delete": [prompt_id]})
        queue = self.queue()
        if _history.in_queue(queue, prompt_id, "queue_running"):
            self._http.request("POST", "/interrupt", json={"prompt_id": prompt_id})
            return "interrupted"
        if _history.in_queue(queue, prompt_id, "queue_pending"):
            # Picked between our delete and our read? It is running or pending still; retry once.
            self._http.request("POST", "/queue", json={"delete": [prompt_id]})
        return "deleted" if self.history(prompt_id) is None else "not_found"

    # -- files ---------------------------------------------------------------------------

    def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", overwrite: bool = False
    ) -> ImageRef:
        """Upload to the input folder under a content-hash name; returns where it landed.

        The name is the sha256 prefix of the bytes plus the extension of ``filename``, so the
        same image uploaded twice is stored once and a retried upload is harmless.
        """
        return files.upload_image(
            self._http, data, filename, subfolder=subfolder, overwrite=overwrite
        )

    def download(
        self, ref: ImageRef | OutputImage, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD
    ) -> bytes:
        """The file's bytes from /view, refusing more than ``max_bytes``."""
        return files.download(self._http, ref, max_bytes=max_bytes)

    # -- following -----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the websocket now (it is otherwise opened by ``submit``).

        Raises ``ComfyUnavailable``, or ``AuthRejected`` when the upgrade gets 401/407.
        """
        self._follower.ensure()

    def wait(
        self,
        prompt_id: str,
        *,
        timeout: float,
        on_progress: Callable[[Progress], Any] | None = None,
        contract: Contract | None = None,
    ) -> RunResult:
        """Follow a submitted prompt until its history entry decides the outcome.

        Returns a ``RunResult``, or raises ``ExecutionFailed``, ``Interrupted``, ``PromptLost``
        (the backend forgot it: restarted), or ``RunTimeout`` after ``timeout`` seconds.
        """
        tracker = ProgressTracker(self._follower.node_count(prompt_id), on_progress)
        entry = _history.wait_for_entry(
            self,
            self._follower,
            prompt_id,
            tracker,
            timeout=timeout,
            poll_interval=self.poll_interval,
            lost_grace=self.lost_grace,
        )
        result = _history.decide(prompt_id, entry)
        tracker.finish()
        return result

    def run(
        self,
        graph: Mapping,
        *,
        prompt_id: str | None = None,
        timeout: float = 600,
        on_progress: Callable[[Progress], Any] | None = None,
        contract: Contract | None = None,
    ) -> RunResult:
        """``submit`` then ``wait``."""
        reply = self.submit(graph, prompt_id=prompt_id, contract=contract)
        return self.wait(
            reply["prompt_id"], timeout=timeout, on_progress=on_progress, contract=contract
        )
