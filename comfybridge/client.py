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
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import mimetypes
import ssl
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import websocket
from websocket._abnf import continuous_frame, frame_buffer

from .capabilities import BackendIncapable, Capabilities
from .contract import Contract
from .errors import (
    ComfyError,
    ComfyUnavailable,
    DownloadTooLarge,
    ExecutionFailed,
    Interrupted,
    OutputMissing,
    PromptLost,
    RunTimeout,
    WorkflowRejected,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_DOWNLOAD = 256 * 1024 * 1024
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_BUFFERED_PROMPTS = 64
_BUFFERED_MESSAGES = 5000
# Status codes meaning "who are you?": the backend's or a proxy's (407) authentication.
_AUTH_STATUSES = {401: "Unauthorized", 407: "Proxy Authentication Required"}


class AuthRejected(ComfyError):
    """The backend, or a proxy in front of it, refused our credentials (HTTP 401 or 407).

    Not retryable: the same headers will be refused again. Fix the token or password.
    """


# -- credentials -----------------------------------------------------------------------------


def bearer_auth(token: str) -> dict[str, str]:
    """Headers for a proxy that wants a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def basic_auth(user: str, password: str) -> dict[str, str]:
    """Headers for a proxy that wants HTTP basic authentication."""
    raw = f"{user}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host:port/p`` -> (``http://host:port/p``, basic-auth headers).

    A URL without credentials comes back unchanged (less a trailing slash) with no headers.
    """
    parts = urlsplit(url.strip().rstrip("/"))
    if "@" not in parts.netloc:
        return urlunsplit(parts), {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, basic_auth(unquote(user), unquote(password))


# -- values ----------------------------------------------------------------------------------


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
    """A prompt that finished successfully."""

    prompt_id: str
    outputs: list[OutputImage]
    history: dict = field(repr=False)

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

    @property
    def vram_free(self) -> int | None:
        """The most free memory on any one device (a model must fit on one)."""
        values = [d.vram_free for d in self.devices if d.vram_free is not None]
        return max(values) if values else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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


# -- websocket with bounded frames -----------------------------------------------------------


class _FrameTooLarge(websocket.WebSocketException):
    pass


class _BoundedFrames(frame_buffer):
    def __init__(self, recv_fn, skip_utf8_validation, limit):
        super().__init__(recv_fn, skip_utf8_validation)
        self.limit = limit

    def recv_length(self):
        super().recv_length()
        if self.length is not None and self.length > self.limit:
            raise _FrameTooLarge(f"websocket frame of {self.length} bytes exceeds {self.limit}")


class _BoundedMessages(continuous_frame):
    def __init__(self, fire_cont_frame, skip_utf8_validation, limit):
        super().__init__(fire_cont_frame, skip_utf8_validation)
        self.limit = limit

    def add(self, frame):
        super().add(frame)
        if self.cont_data and len(self.cont_data[1]) > self.limit:
            self.cont_data = None
            raise _FrameTooLarge(f"websocket message exceeds {self.limit} bytes")


# -- progress --------------------------------------------------------------------------------


class _ProgressTracker:
    """Turns progress_state / progress / executing messages into ``Progress`` reports.

    The fraction counts steps: a node without progress counts as one step, a sampler as its
    step count. Nodes not reached yet count one step each, so the estimate can only rise.
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
        self.fraction = 1.0
        self._emit(Progress(None, 1, 1, 1.0))

    def _emit(self, progress: Progress) -> None:
        key = (progress.node, progress.value, progress.max, progress.fraction)
        if self.callback is None or key == self.last:
            return
        self.last = key
        self.callback(progress)


# -- the client ------------------------------------------------------------------------------


class ComfyClient:
    """One ComfyUI backend: an HTTP session and (lazily) one websocket.

    ``headers`` are sent with every request and the websocket handshake (for a proxy's auth);
    credentials in ``base_url`` become a basic-auth header (``ValueError`` if ``headers`` has
    an Authorization too). ``https`` URLs use ``wss`` for the websocket; ``verify`` is False
    or a CA bundle path for a proxy with a private certificate. ``timeout`` bounds each HTTP
    request and the websocket handshake, in seconds. ``capabilities_ttl`` is how long the
    ``/object_info`` answer is reused by ``capabilities()`` and ``check_can_run()``.
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
        bare, url_headers = split_credentials(base_url)
        parts = urlsplit(bare)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {bare!r}")
        headers = dict(headers or {})
        if url_headers and any(k.lower() == "authorization" for k in headers):
            raise ValueError("credentials are in both the URL and the Authorization header")
        headers.update(url_headers)
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
        self.session = requests.Session()
        self.session.headers.update(self.headers)
        self.session.verify = verify
        # Proxy settings from the environment, read once: requests would read them again
        # on every call, which costs more than a request to a local backend.
        self.session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.session.trust_env = False
        self._ws: websocket.WebSocket | None = None
        self._ws_last_ping = 0.0
        self._buffer: OrderedDict[str, deque] = OrderedDict()
        self._node_counts: dict[str, int] = {}
        self._decided: deque[str] = deque(maxlen=_BUFFERED_PROMPTS)

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the websocket and the HTTP session."""
        self._close_ws()
        self.session.close()

    # -- HTTP ----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self._url(path), **kwargs)
        except requests.RequestException as exc:
            raise ComfyUnavailable(f"{method} {path}: {exc}") from exc
        if response.status_code >= 500:
            raise ComfyUnavailable(f"{method} {path}: HTTP {response.status_code}")
        self._refuse_auth_failure(method, path, response.status_code)
        return response

    def _refuse_auth_failure(self, method: str, path: str, status: int) -> None:
        if status in _AUTH_STATUSES:
            raise AuthRejected(
                f"{method} {path} on {self.base_url}: HTTP {status} {_AUTH_STATUSES[status]}: "
                "the backend or a proxy in front of it refused our credentials "
                "(check the token, the password in the URL, or the headers)"
            )

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code != 200:
            raise ComfyError(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ComfyUnavailable(f"{method} {path}: reply is not JSON") from exc

    def system_stats(self) -> dict:
        return self._json("GET", "/system_stats")

    def queue_remaining(self) -> int:
        """``GET /prompt``: prompts pending plus running. One small request."""
        info = self._json("GET", "/prompt")
        exec_info = info.get("exec_info") if isinstance(info, dict) else None
        remaining = exec_info.get("queue_remaining") if isinstance(exec_info, dict) else None
        if not isinstance(remaining, int):
            raise ComfyUnavailable(f"{self.base_url}: GET /prompt did not answer like ComfyUI")
        return remaining

    def health(self) -> Health:
        """``/system_stats`` and ``GET /prompt`` in one small value.

        Raises ``ComfyUnavailable`` when the backend cannot be reached or answers 5xx, and
        ``AuthRejected`` on 401/407.
        """
        started = time.monotonic()
        stats = self._json("GET", "/system_stats")
        queue_info = self._json("GET", "/prompt")
        latency = (time.monotonic() - started) * 1000
        stats = stats if isinstance(stats, dict) else {}
        system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
        exec_info = queue_info.get("exec_info") if isinstance(queue_info, dict) else None
        remaining = exec_info.get("queue_remaining") if isinstance(exec_info, dict) else None
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
        return Health(
            url=self.base_url,
            ok=bool(system) and isinstance(remaining, int),
            comfyui_version=system.get("comfyui_version"),
            devices=devices,
            ram_total=_int_or_none(system.get("ram_total")),
            ram_free=_int_or_none(system.get("ram_free")),
            queue_remaining=remaining if isinstance(remaining, int) else 0,
            latency_ms=round(latency, 1),
        )

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
        return self._json("GET", "/object_info")

    def queue(self) -> dict:
        """``{"queue_running": [...], "queue_pending": [...]}``; items are 5-element lists."""
        return self._json("GET", "/queue")

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a finished prompt, or None (unknown, pending, running, lost)."""
        body = self._json("GET", f"/history/{prompt_id}")
        entry = body.get(prompt_id) if isinstance(body, dict) else None
        return entry if isinstance(entry, dict) else None

    def delete_history(self, prompt_id: str) -> None:
        self._request("POST", "/history", json={"delete": [prompt_id]})

    def locate(self, prompt_id: str) -> str | None:
        """Where the backend has this prompt: "running", "pending", "done", or None."""
        if self.history(prompt_id) is not None:
            return "done"
        queue = self.queue()
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            if any(_item_id(item) == prompt_id for item in queue.get(key) or []):
                return state
        # It may have finished between the two reads.
        return "done" if self.history(prompt_id) is not None else None

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
            self._watch(prompt_id, graph)
            return {"prompt_id": prompt_id, "number": None, "node_errors": {}, "known": True}
        # Connect before posting, so no message of this prompt is sent to nobody.
        if follow:
            self._ensure_ws(quiet=True)
        self._watch(prompt_id, graph)
        body: dict[str, Any] = {
            "prompt": graph,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            response = self.session.post(self._url("/prompt"), json=body, timeout=self.timeout)
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise ComfyUnavailable(f"POST /prompt: {exc}") from exc
            return self._recover_submission(prompt_id, exc, ambiguous_grace)
        except requests.RequestException as exc:
            return self._recover_submission(prompt_id, exc, ambiguous_grace)
        if response.status_code >= 500:
            return self._recover_submission(
                prompt_id, f"HTTP {response.status_code}", ambiguous_grace
            )
        try:
            reply = response.json()
        except ValueError:
            reply = {}
        self._refuse_auth_failure("POST", "/prompt", response.status_code)
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

    def _recover_submission(self, prompt_id: str, cause: Any, grace: float) -> dict:
        """After an ambiguous POST failure: submitted if the backend knows the id."""
        deadline = time.monotonic() + grace
        last_error: Exception | None = None
        while True:
            try:
                if self.locate(prompt_id) is not None:
                    log.info("POST /prompt failed (%s) but %s was queued", cause, prompt_id)
                    return {
                        "prompt_id": prompt_id,
                        "number": None,
                        "node_errors": {},
                        "recovered": True,
                    }
            except ComfyError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        detail = f"; lookup failed: {last_error}" if last_error else ""
        raise ComfyUnavailable(
            f"POST /prompt failed ({cause}) and the backend does not know {prompt_id}{detail}"
        )

    def cancel(self, prompt_id: str) -> str:
        """Stop a prompt: remove it if pending, interrupt it if running. Never touches others.

        Returns "deleted", "interrupted" or "not_found".
        """
        self._request("POST", "/queue", json={"delete": [prompt_id]})
        queue = self.queue()
        if any(_item_id(i) == prompt_id for i in queue.get("queue_running") or []):
            self._request("POST", "/interrupt", json={"prompt_id": prompt_id})
            return "interrupted"
        if any(_item_id(i) == prompt_id for i in queue.get("queue_pending") or []):
            # Picked between our delete and our read? It is running or pending still; retry once.
            self._request("POST", "/queue", json={"delete": [prompt_id]})
        return "deleted" if self.history(prompt_id) is None else "not_found"

    # -- files ---------------------------------------------------------------------------

    def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", overwrite: bool = False
    ) -> ImageRef:
        """Upload to the input folder under a content-hash name; returns where it landed.

        The name is the sha256 prefix of the bytes plus the extension of ``filename``, so the
        same image uploaded twice is stored once and a retried upload is harmless.
        """
        suffix = PurePosixPath(filename).suffix.lower() or ".png"
        name = hashlib.sha256(data).hexdigest()[:32] + suffix
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = self._request(
            "POST",
            "/upload/image",
            files={"image": (name, data, mime)},
            data={
                "type": "input",
                "subfolder": subfolder,
                "overwrite": "true" if overwrite else "false",
            },
        )
        if response.status_code != 200:
            raise ComfyError(f"upload of {filename!r} refused: HTTP {response.status_code}")
        reply = response.json()
        return ImageRef(reply["name"], reply.get("subfolder", ""), reply.get("type", "input"))

    def download(
        self, ref: ImageRef | OutputImage, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD
    ) -> bytes:
        """The file's bytes from /view, refusing more than ``max_bytes``."""
        if isinstance(ref, OutputImage):
            ref = ref.ref
        response = self._request("GET", "/view", params=ref.query(), stream=True)
        with response:
            if response.status_code == 404:
                raise OutputMissing(f"{ref.type}/{ref.load_name} is not on the backend")
            if response.status_code != 200:
                raise ComfyError(f"GET /view {ref.load_name}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadTooLarge(f"{ref.load_name} is {declared} bytes; limit {max_bytes}")
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadTooLarge(f"{ref.load_name} exceeds {max_bytes} bytes")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise ComfyUnavailable(f"GET /view {ref.load_name}: {exc}") from exc
        return b"".join(chunks)

    # -- websocket -----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the websocket now (it is otherwise opened by ``submit``).

        Raises ``ComfyUnavailable``, or ``AuthRejected`` when the upgrade gets 401/407.
        """
        self._ensure_ws()

    def _sslopt(self) -> dict | None:
        if self.verify is False:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        if isinstance(self.verify, str):
            return {"ca_certs": self.verify}
        return None

    def _ensure_ws(self, *, quiet: bool = False) -> bool:
        if self._ws is not None and self._ws.connected:
            return True
        try:
            self._connect_ws()
            return True
        except ComfyUnavailable:
            if not quiet:
                raise
            return False

    def _connect_ws(self) -> None:
        # ComfyUI removes a client id from its routing map when the *old* socket closes, which
        # would silently detach a newer socket with the same id: close first, then connect.
        self._close_ws()
        # No UTF-8 check in Python per frame: json.loads refuses bad text anyway.
        ws = websocket.WebSocket(skip_utf8_validation=True, sslopt=self._sslopt())
        ws.frame_buffer = _BoundedFrames(ws._recv, True, self.max_frame_bytes)
        ws.cont_frame = _BoundedMessages(False, True, self.max_frame_bytes)
        ws.settimeout(self.timeout)
        try:
            ws.connect(self.ws_url, header=[f"{k}: {v}" for k, v in self.headers.items()])
        except websocket.WebSocketBadStatusException as exc:
            with contextlib.suppress(Exception):
                ws.close()
            status = getattr(exc, "status_code", None)
            if status in _AUTH_STATUSES:
                raise AuthRejected(
                    f"websocket upgrade on {self.base_url}/ws: HTTP {status} "
                    f"{_AUTH_STATUSES[status]}: the backend or a proxy in front of it refused "
                    "our credentials (check the token, the password in the URL, or the headers)"
                ) from exc
            raise ComfyUnavailable(f"websocket {self.ws_url}: {exc}") from exc
        except (OSError, websocket.WebSocketException) as exc:
            with contextlib.suppress(Exception):
                ws.close()
            raise ComfyUnavailable(f"websocket {self.ws_url}: {exc}") from exc
        ws.settimeout(self.recv_timeout)
        self._ws = ws
        self._ws_last_ping = time.monotonic()

    def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=1)

    def _receive(self) -> dict | None:
        """One text message, or None after ``recv_timeout``. Raises on a broken socket."""
        ws = self._ws
        if ws is None:
            raise websocket.WebSocketConnectionClosedException("not connected")
        now = time.monotonic()
        if now - self._ws_last_ping >= self.ping_interval:
            self._ws_last_ping = now
            ws.ping()
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise websocket.WebSocketConnectionClosedException("closed by the server")
        if opcode != websocket.ABNF.OPCODE_TEXT:
            return None  # binary previews: not used
        try:
            message = json.loads(data)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def _watch(self, prompt_id: str, graph: Mapping) -> None:
        self._node_counts[prompt_id] = len(graph)
        while len(self._node_counts) > _BUFFERED_PROMPTS:
            self._node_counts.pop(next(iter(self._node_counts)))

    def _stash(self, prompt_id: str, message: dict) -> None:
        if prompt_id in self._decided:
            return  # late messages of a prompt whose outcome is already known
        queue = self._buffer.get(prompt_id)
        if queue is None:
            queue = self._buffer[prompt_id] = deque(maxlen=_BUFFERED_MESSAGES)
            while len(self._buffer) > _BUFFERED_PROMPTS:
                self._buffer.popitem(last=False)
        queue.append(message)

    # -- waiting -------------------------------------------------------------------------

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
        deadline = time.monotonic() + timeout
        tracker = _ProgressTracker(self._node_counts.get(prompt_id), on_progress)
        # A prompt submitted through this socket reports its own end over it; anything else
        # (submitted elsewhere, or the socket dropped since) is looked up at once.
        followed = prompt_id in self._node_counts and self._ws is not None and self._ws.connected
        poll_at = time.monotonic() + (self.poll_interval if followed else 0.0)
        absent_since: float | None = None
        last_problem = ""
        for message in self._buffer.pop(prompt_id, ()):
            if self._is_terminal(message, tracker):
                poll_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= poll_at:
                try:
                    state = self._poll(prompt_id)
                except ComfyUnavailable as exc:
                    state, last_problem = "unreachable", str(exc)
                if isinstance(state, dict):
                    self._decided.append(prompt_id)
                    self._buffer.pop(prompt_id, None)
                    self._node_counts.pop(prompt_id, None)
                    return self._decide(prompt_id, state, tracker)
                if state == "absent":
                    absent_since = absent_since or now
                    if now - absent_since >= self.lost_grace:
                        raise PromptLost(
                            f"prompt {prompt_id} is neither queued nor in the history: "
                            "the backend forgot it (restarted?)"
                        )
                    poll_at = now + min(0.5, self.lost_grace / 3)
                else:
                    absent_since = None
                    poll_at = now + self.poll_interval
            if now >= deadline:
                detail = f" (last problem: {last_problem})" if last_problem else ""
                raise RunTimeout(f"prompt {prompt_id} did not finish in {timeout:g}s{detail}")
            if not self._ensure_ws(quiet=True):
                last_problem = f"websocket {self.ws_url} unreachable"
                time.sleep(max(0.0, min(0.5, deadline - now, poll_at - now)))
                poll_at = min(poll_at, time.monotonic() + 0.5)
                continue
            reconnected = False
            try:
                message = self._receive()
            except (OSError, websocket.WebSocketException) as exc:
                last_problem = f"websocket: {exc}"
                self._close_ws()
                message, reconnected = None, True
            if reconnected:
                # Messages sent while the socket was down are lost; the history is not.
                poll_at = time.monotonic()
                continue
            if message is None:
                continue
            data = message.get("data") if isinstance(message.get("data"), dict) else {}
            owner = data.get("prompt_id")
            if owner is None:
                continue  # status, and the node-only `executing` sent on reconnect
            if owner != prompt_id:
                self._stash(str(owner), message)
                continue
            if self._is_terminal(message, tracker):
                poll_at = time.monotonic()
            else:
                poll_at = max(poll_at, time.monotonic() + self.poll_interval)

    @staticmethod
    def _is_terminal(message: Mapping, tracker: _ProgressTracker) -> bool:
        kind = message.get("type")
        data = message.get("data") or {}
        if kind in ("execution_success", "execution_error", "execution_interrupted"):
            return True
        if kind == "executing" and data.get("node") is None:
            return True
        tracker.feed(kind, data)
        return False

    def _poll(self, prompt_id: str) -> dict | str:
        """The history entry, or "queued", or "absent"."""
        entry = self.history(prompt_id)
        if entry is not None:
            return entry
        queue = self.queue()
        items = (queue.get("queue_running") or []) + (queue.get("queue_pending") or [])
        if any(_item_id(item) == prompt_id for item in items):
            return "queued"
        entry = self.history(prompt_id)
        return entry if entry is not None else "absent"

    def _decide(self, prompt_id: str, entry: dict, tracker: _ProgressTracker) -> RunResult:
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        for kind, data in messages:
            if kind == "execution_error":
                raise ExecutionFailed(
                    node_id=str(data.get("node_id")),
                    node_type=str(data.get("node_type")),
                    exception_type=str(data.get("exception_type")),
                    exception_message=str(data.get("exception_message") or ""),
                )
            if kind == "execution_interrupted":
                node = data.get("node_id")
                raise Interrupted(
                    f"prompt {prompt_id} was interrupted"
                    + (f" before node {node} ({data.get('node_type')})" if node else "")
                )
        if status.get("status_str") != "success" or not status.get("completed", False):
            raise ComfyError(f"prompt {prompt_id} did not complete: {status or 'no status'}")
        tracker.finish()
        return RunResult(prompt_id, outputs_from_history(entry), entry)

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


def _item_id(item: Any) -> str | None:
    if isinstance(item, (list, tuple)) and len(item) > 1:
        return str(item[1])
    return None


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was refused: the request certainly never arrived."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text
