"""Reaching a backend behind an authenticating proxy: headers on HTTP and on the websocket."""

from __future__ import annotations

import base64
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from comfybridge.client import AuthRejected, ComfyClient, basic_auth, bearer_auth
from comfybridge.sim.process import SimProcess

TOKEN = "s3cret-token"


def swatch(prefix="proxy"):
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0x123456},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": f"{prefix}_{uuid.uuid4().hex[:8]}"},
        },
    }


@pytest.fixture(scope="module")
def guarded():
    with SimProcess(args=["--auth", TOKEN]) as sim:
        yield sim


def test_the_token_opens_http_routes_and_the_websocket(guarded):
    progress = []
    with ComfyClient(guarded.url, headers=bearer_auth(TOKEN), poll_interval=30) as client:
        client.connect()  # the upgrade itself carries the header, or this raises
        assert client.health().queue_remaining == 0
        result = client.run(swatch(), timeout=10, on_progress=progress.append)
    assert len(result.saved) == 1
    # Progress only arrives over the websocket: the run was followed there, not polled.
    assert progress and progress[-1].fraction == 1.0


def test_without_the_token_http_says_401(guarded):
    with ComfyClient(guarded.url) as client, pytest.raises(AuthRejected) as exc:
        client.health()
    assert "HTTP 401 Unauthorized" in str(exc.value)
    assert guarded.url in str(exc.value)
    assert not exc.value.retryable


def test_without_the_token_the_websocket_upgrade_says_401(guarded):
    with ComfyClient(guarded.url, headers=bearer_auth("wrong")) as client:
        with pytest.raises(AuthRejected, match=r"websocket upgrade .*HTTP 401"):
            client.connect()
        # Submitting connects the websocket first: a refused upgrade is not swallowed.
        with pytest.raises(AuthRejected):
            client.submit(swatch())


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Recorder.seen
    server.shutdown()
    server.server_close()


def test_url_credentials_become_basic_auth_on_http_and_websocket(recorder):
    server, seen = recorder
    port = server.server_address[1]
    client = ComfyClient(f"http://ann:p%40ss@127.0.0.1:{port}")
    assert client.base_url == f"http://127.0.0.1:{port}"
    assert "ann" not in client.ws_url and "@" not in client.ws_url
    with client:
        with pytest.raises(AuthRejected):
            client.system_stats()
        with pytest.raises(AuthRejected):
            client.connect()
    expected = "Basic " + base64.b64encode(b"ann:p@ss").decode()
    assert [(path.split("?")[0], auth) for path, auth in seen] == [
        ("/system_stats", expected),
        ("/ws", expected),
    ]


def test_https_urls_use_wss_and_keep_their_path():
    client = ComfyClient("https://u:pw@comfy.example:8443/gpu1/", verify=False)
    assert client.base_url == "https://comfy.example:8443/gpu1"
    assert client.ws_url.startswith("wss://comfy.example:8443/gpu1/ws?clientId=")
    assert client.headers == basic_auth("u", "pw")
    assert client.session.verify is False
    assert client._follower.sslopt["check_hostname"] is False


def test_credentials_in_both_the_url_and_the_headers_are_refused():
    with pytest.raises(ValueError, match="both"):
        ComfyClient("http://u:p@127.0.0.1:1", headers={"authorization": "Bearer x"})
