"""The websocket follower's own frame reading, against a server that writes raw frames.

The simulator only sends well-formed, unfragmented frames; this server sends what a broken
or hostile backend (or proxy) could: a header announcing a huge frame with no payload after
it, a message in fragments with a ping between them, a frame cut in two by a pause.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time

import pytest
import websocket

from comfybridge.ws import Follower, FrameTooLarge

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None) -> bytes:
    """A server frame (unmasked); ``length`` announces another length than the payload's."""
    length = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([length])
    elif length < 1 << 16:
        head += bytes([126]) + struct.pack("!H", length)
    else:
        head += bytes([127]) + struct.pack("!Q", length)
    return head + payload


def text(obj) -> bytes:
    return json.dumps(obj).encode()


class RawServer:
    """Accepts one websocket, completes the handshake, then runs ``script(conn, server)``.

    Frames the client sends afterwards are collected in ``received`` as (opcode, payload).
    """

    def __init__(self, script):
        self.script = script
        self.received: list[tuple[int, bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/ws?clientId=t"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(
                line.split(":", 1)[1].strip()
                for line in request.decode().split("\r\n")
                if line.lower().startswith("sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            self.script(conn, self)

    def read_client_frames(self, conn: socket.socket, until: int = CLOSE) -> None:
        """Collect the client's (masked) frames until one with opcode ``until`` or EOF."""
        buf = b""

        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = conn.recv(4096)
                if not chunk:
                    raise EOFError
                buf += chunk
            taken, buf = buf[:n], buf[n:]
            return taken

        try:
            while True:
                b1, b2 = need(2)
                length = b2 & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", need(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", need(8))
                mask = need(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(need(length)))
                self.received.append((b1 & 0x0F, payload))
                if b1 & 0x0F == until:
                    return
        except (EOFError, OSError):
            return


def follower(url: str, *, limit: int = 1024, recv_timeout: float = 0.2) -> Follower:
    f = Follower(
        url,
        base_url="http://127.0.0.1",
        headers={},
        timeout=5,
        recv_timeout=recv_timeout,
        ping_interval=3600,
        max_frame_bytes=limit,
        verify=True,
    )
    f.connect()
    return f


def test_a_frame_announcing_more_than_the_limit_is_refused_from_its_header():
    def script(conn, server):
        # 1 TiB announced, not one byte of it sent: only the header can refuse it.
        conn.sendall(frame(BINARY, b"", length=1 << 40))
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url, limit=1024)
        with pytest.raises(FrameTooLarge, match="frame of 1099511627776 bytes exceeds 1024"):
            f.next_message("p1")
        assert not f.connected
    # The socket is dropped with "message too big", without waiting to read anything more.
    assert server.received == [(CLOSE, struct.pack("!H", 1009))]


def test_a_message_in_fragments_is_bounded_as_a_whole():
    def script(conn, server):
        conn.sendall(frame(TEXT, b"x" * 200, fin=False) + frame(CONT, b"y" * 200))
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url, limit=256)
        with pytest.raises(FrameTooLarge, match="message of 400 bytes exceeds 256"):
            f.receive()
        f.close()


def test_fragments_with_a_ping_between_them_make_one_message_and_the_ping_is_answered():
    message = {"type": "progress", "data": {"prompt_id": "p1", "node": "3", "value": 1}}
    raw = text(message)

    def script(conn, server):
        conn.sendall(
            frame(BINARY, b"\x00\x00\x00\x01preview")  # a preview: skipped
            + frame(TEXT, raw[:10], fin=False)
            + frame(PING, b"are you there")
            + frame(CONT, raw[10:20], fin=False)
            + frame(CONT, raw[20:])
        )
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url)
        got = [f.next_message("p1") for _ in range(3)]
        f.close()
    assert message in got
    assert (PONG, b"are you there") in server.received
    assert server.received[-1][0] == CLOSE


def test_a_frame_cut_by_a_pause_longer_than_the_receive_timeout_is_not_lost():
    message = {"type": "executing", "data": {"prompt_id": "p1", "node": "2"}}
    whole = frame(TEXT, text(message))

    def script(conn, server):
        conn.sendall(whole[:7])
        time.sleep(0.6)
        conn.sendall(whole[7:])
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url, recv_timeout=0.1)
        assert f.receive() is None  # half a frame: nothing yet, and nothing thrown away
        deadline = time.monotonic() + 5
        got = None
        while got is None and time.monotonic() < deadline:
            got = f.receive()
        f.close()
    assert got == message


def test_a_close_from_the_server_is_answered_and_reported():
    def script(conn, server):
        conn.sendall(frame(CLOSE, struct.pack("!H", 1001)))
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url)
        with pytest.raises(websocket.WebSocketConnectionClosedException, match="by the server"):
            f.next_message("p1")
        assert not f.connected
    assert server.received == [(CLOSE, struct.pack("!H", 1000))]


def test_messages_of_other_prompts_are_kept_for_them():
    mine = {"type": "executing", "data": {"prompt_id": "p1", "node": "1"}}
    theirs = {"type": "executing", "data": {"prompt_id": "p2", "node": "1"}}

    def script(conn, server):
        conn.sendall(frame(TEXT, text(theirs)) + frame(TEXT, text(mine)))
        server.read_client_frames(conn)

    with RawServer(script) as server:
        f = follower(server.url)
        assert f.next_message("p1") is None  # p2's, buffered
        assert f.next_message("p1") == mine
        assert list(f.take("p2")) == [theirs]
        f.close()
