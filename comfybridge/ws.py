"""The websocket side of a ComfyClient: one socket per client_id, read with bounded frames.

ComfyUI routes a prompt's messages to the socket of the client_id it was submitted with, and
can send the first ones before the POST's reply arrives, so the socket is connected before
the POST and messages of prompts nobody waits on yet are buffered (``Follower``), a bounded
number of them. The socket is only a hint of when to read the history; losing it loses
progress reports, never an outcome.

Why frames are read here rather than by websocket-client: a sampler's previews arrive as
binary frames, and a backend (or a proxy) can announce a frame of any length up to 2**63
bytes. websocket-client's ``recv``/``recv_frame`` read a whole frame into memory before
returning it, and its only way to refuse one early is to replace the frame parser its
private module defines (``websocket._abnf.frame_buffer``), which may change in any release.
So the library does what its public API offers: the handshake (``WebSocket.connect``, with
headers, TLS options and the upgrade's status), ``ping``/``pong``/``send_close`` and
``shutdown``; ``BoundedReader`` reads frames off ``WebSocket.sock`` itself, checks each
frame's announced length in its header before reading the payload, and the size of a
fragmented message as it grows. ``websocket.ABNF`` (public) validates each frame.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping

import websocket

from .auth import auth_rejection
from .errors import ComfyUnavailable

BUFFERED_PROMPTS = 64
BUFFERED_MESSAGES = 5000
# Ending messages of a prompt: time to read its history.
_END_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")


class FrameTooLarge(websocket.WebSocketException):
    """A frame, or a message of several frames, is over the limit: refused before reading it."""


class BoundedReader:
    """Whole messages from a connected ``websocket.WebSocket``, none bigger than ``limit``.

    Bytes read but not yet part of a whole frame are kept between calls, so a receive timeout
    in the middle of a frame loses nothing. Pings are answered; a close frame is answered and
    raises ``WebSocketConnectionClosedException``. After any error the reader is ``broken``:
    its place in the byte stream is lost, so the socket must be dropped, not read again.
    """

    def __init__(self, ws: websocket.WebSocket, limit: int):
        self.ws = ws
        self.limit = limit
        self.broken = False
        self._buf = bytearray()
        self._opcode: int | None = None  # of the fragmented message being assembled
        self._parts: list[bytes] = []
        self._size = 0

    def recv(self) -> tuple[int, bytes] | None:
        """(opcode, payload) of the next text or binary message; None after the socket timeout."""
        try:
            while True:
                try:
                    frame = self._frame()
                except (TimeoutError, ssl.SSLWantReadError):
                    return None
                message = self._assemble(frame)
                if message is not None:
                    return message
        except Exception:
            self.broken = True
            raise

    def _assemble(self, frame: websocket.ABNF) -> tuple[int, bytes] | None:
        opcode = frame.opcode
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            if self.ws.connected:
                self.ws.send_close()
            raise websocket.WebSocketConnectionClosedException("closed by the server")
        if opcode == websocket.ABNF.OPCODE_PING:
            self.ws.pong(frame.data)
            return None
        if opcode == websocket.ABNF.OPCODE_PONG:
            return None
        if (opcode == websocket.ABNF.OPCODE_CONT) != (self._opcode is not None):
            raise websocket.WebSocketProtocolException("continuation frame out of place")
        if opcode != websocket.ABNF.OPCODE_CONT:
            self._opcode = opcode
        self._parts.append(frame.data)
        self._size += len(frame.data)
        if not frame.fin:
            return None
        message = (self._opcode, b"".join(self._parts))
        self._opcode, self._parts, self._size = None, [], 0
        return message

    def _frame(self) -> websocket.ABNF:
        self._fill(2)
        b1, b2 = self._buf[0], self._buf[1]
        opcode, masked, short = b1 & 0x0F, bool(b2 & 0x80), b2 & 0x7F
        extended = {126: 2, 127: 8}.get(short, 0)
        head = 2 + extended + (4 if masked else 0)
        self._fill(head)
        length = int.from_bytes(self._buf[2 : 2 + extended], "big") if extended else short
        if opcode & 0x8 and length > 125:
            raise websocket.WebSocketProtocolException("control frame over 125 bytes")
        # A continuation frame counts towards its message.
        so_far = self._size if opcode == websocket.ABNF.OPCODE_CONT else 0
        if so_far + length > self.limit:
            what = "message" if so_far else "frame"
            raise FrameTooLarge(f"websocket {what} of {so_far + length} bytes exceeds {self.limit}")
        self._fill(head + length)
        payload = bytes(self._buf[head : head + length])
        if masked:  # servers must not mask, but a masked frame is still readable
            payload = websocket.ABNF.mask(bytes(self._buf[head - 4 : head]), payload)
        del self._buf[: head + length]
        frame = websocket.ABNF(
            b1 >> 7 & 1, b1 >> 6 & 1, b1 >> 5 & 1, b1 >> 4 & 1, opcode, int(masked), payload
        )
        # UTF-8 is not checked per frame: json.loads refuses bad text anyway.
        frame.validate(skip_utf8_validation=True)
        return frame

    def _fill(self, size: int) -> None:
        """Read until ``size`` bytes are buffered; raises TimeoutError, keeping what came."""
        while len(self._buf) < size:
            sock = self.ws.sock
            if sock is None:
                raise websocket.WebSocketConnectionClosedException("not connected")
            chunk = sock.recv(65536)
            if not chunk:
                raise websocket.WebSocketConnectionClosedException("closed by the server")
            self._buf += chunk


def ends_prompt(message: Mapping) -> bool:
    """True for the messages after which a prompt's history entry is written."""
    kind = message.get("type")
    if kind in _END_MESSAGES:
        return True
    data = message.get("data") or {}
    return kind == "executing" and data.get("node") is None


def ssl_options(verify: bool | str) -> dict | None:
    """websocket-client's ``sslopt`` for requests' ``verify`` (False, or a CA bundle path)."""
    if verify is False:
        return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
    if isinstance(verify, str):
        return {"ca_certs": verify}
    return None


class Follower:
    """The websocket of one client_id, and the messages of prompts nobody waits on yet.

    ``watch`` a prompt before submitting it; ``next_message`` returns the messages of one
    prompt and buffers the others' (the last ``BUFFERED_PROMPTS`` prompts, at most
    ``BUFFERED_MESSAGES`` each); ``settle`` a prompt once its outcome is known, so its late
    messages are dropped instead of buffered.
    """

    def __init__(
        self,
        url: str,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        recv_timeout: float,
        ping_interval: float,
        max_frame_bytes: int,
        verify: bool | str,
    ):
        self.url = url
        self.base_url = base_url
        self.headers = dict(headers)
        self.timeout = timeout
        self.recv_timeout = recv_timeout
        self.ping_interval = ping_interval
        self.max_frame_bytes = max_frame_bytes
        self.sslopt = ssl_options(verify)
        self.ws: websocket.WebSocket | None = None
        self._reader: BoundedReader | None = None
        self._last_ping = 0.0
        self._buffer: OrderedDict[str, deque] = OrderedDict()
        self._node_counts: dict[str, int] = {}
        self._decided: deque[str] = deque(maxlen=BUFFERED_PROMPTS)
        # How many `status` messages (the backend's queue changed) this follower has read.
        self.queue_changes = 0

    @property
    def connected(self) -> bool:
        return self.ws is not None and self.ws.connected

    def ensure(self, *, quiet: bool = False) -> bool:
        """Connect unless connected. With ``quiet``, False instead of ``ComfyUnavailable``."""
        if self.connected:
            return True
        try:
            self.connect()
            return True
        except ComfyUnavailable:
            if not quiet:
                raise
            return False

    def connect(self) -> None:
        """A new socket. Raises ``ComfyUnavailable``, or ``AuthRejected`` on a 401/407 upgrade."""
        # ComfyUI removes a client id from its routing map when the *old* socket closes, which
        # would silently detach a newer socket with the same id: close first, then connect.
        self.close()
        ws = websocket.WebSocket(sslopt=self.sslopt)
        ws.settimeout(self.timeout)
        try:
            ws.connect(self.url, header=[f"{k}: {v}" for k, v in self.headers.items()])
        except websocket.WebSocketBadStatusException as exc:
            with contextlib.suppress(Exception):
                ws.shutdown()
            where = f"websocket upgrade on {self.base_url}/ws"
            rejection = auth_rejection(getattr(exc, "status_code", None), where)
            if rejection is not None:
                raise rejection from exc
            raise ComfyUnavailable(f"websocket {self.url}: {exc}") from exc
        except (OSError, websocket.WebSocketException) as exc:
            with contextlib.suppress(Exception):
                ws.shutdown()
            raise ComfyUnavailable(f"websocket {self.url}: {exc}") from exc
        ws.settimeout(self.recv_timeout)
        self.ws, self._reader = ws, BoundedReader(ws, self.max_frame_bytes)
        self._last_ping = time.monotonic()

    def close(self) -> None:
        """Close the socket, waiting up to a second for the server's close reply.

        The wait lets ComfyUI forget the old socket before a new one registers the same
        client_id. ``WebSocket.close`` would wait the same way, but reading with the library's
        own unbounded frame parser, so the reply is read here.
        """
        ws, reader, self.ws, self._reader = self.ws, self._reader, None, None
        if ws is None:
            return
        with contextlib.suppress(Exception):
            if ws.connected and reader is not None and not reader.broken:
                ws.send_close()
                deadline = time.monotonic() + 1.0
                while (left := deadline - time.monotonic()) > 0:
                    ws.settimeout(left)
                    reader.recv()  # raises on the close reply, or on anything else amiss
            elif ws.connected:
                ws.send_close(websocket.STATUS_MESSAGE_TOO_BIG)
        with contextlib.suppress(Exception):
            ws.shutdown()

    def receive(self) -> dict | None:
        """One JSON object message, or None after ``recv_timeout``. Raises on a broken socket."""
        ws, reader = self.ws, self._reader
        if ws is None or reader is None:
            raise websocket.WebSocketConnectionClosedException("not connected")
        now = time.monotonic()
        if now - self._last_ping >= self.ping_interval:
            self._last_ping = now
            ws.ping()
        received = reader.recv()
        if received is None or received[0] != websocket.ABNF.OPCODE_TEXT:
            return None  # silence, or binary previews: not used
        try:
            message = json.loads(received[1])
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def next_message(self, prompt_id: str) -> dict | None:
        """The next message about ``prompt_id``, or None when there was none for now.

        Messages of other prompts are buffered. On a broken socket the socket is closed and
        the error raised: whatever was sent meanwhile is lost, the history is not.
        """
        try:
            message = self.receive()
        except (OSError, websocket.WebSocketException):
            self.close()
            raise
        if message is None:
            return None
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        owner = data.get("prompt_id")
        if owner is None:
            # status (sent to every socket), and the node-only `executing` sent on reconnect
            if message.get("type") == "status":
                self.queue_changes += 1
            return None
        if owner != prompt_id:
            self._stash(str(owner), message)
            return None
        return message

    def watch(self, prompt_id: str, node_count: int) -> None:
        """Remember a prompt submitted through this socket, and its size for progress."""
        self._node_counts[prompt_id] = node_count
        while len(self._node_counts) > BUFFERED_PROMPTS:
            self._node_counts.pop(next(iter(self._node_counts)))

    def node_count(self, prompt_id: str) -> int | None:
        return self._node_counts.get(prompt_id)

    def follows(self, prompt_id: str) -> bool:
        """True when the prompt was submitted here and the socket is still up to report it."""
        return prompt_id in self._node_counts and self.connected

    def take(self, prompt_id: str) -> Iterable[dict]:
        """The messages buffered for ``prompt_id``, removed from the buffer."""
        return self._buffer.pop(prompt_id, ())

    def settle(self, prompt_id: str) -> None:
        """The outcome of ``prompt_id`` is known: forget it, and drop its late messages."""
        self._decided.append(prompt_id)
        self._buffer.pop(prompt_id, None)
        self._node_counts.pop(prompt_id, None)

    def _stash(self, prompt_id: str, message: dict) -> None:
        if prompt_id in self._decided:
            return  # late messages of a prompt whose outcome is already known
        queue = self._buffer.get(prompt_id)
        if queue is None:
            queue = self._buffer[prompt_id] = deque(maxlen=BUFFERED_MESSAGES)
            while len(self._buffer) > BUFFERED_PROMPTS:
                self._buffer.popitem(last=False)
        queue.append(message)
