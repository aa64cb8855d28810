"""Happy path of the simulator: submit, follow on the websocket, history, view, upload."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
import requests
import websocket
from PIL import Image

from comfybridge.sim.process import SimProcess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

CHAIN = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 3368652},
    },
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 5, "sigma": 2.0}},
    "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "basic"}},
}


@pytest.fixture(scope="module")
def sim():
    with SimProcess() as s:
        yield s


def run_with_ws(sim, graph, **extra):
    cid = uuid.uuid4().hex
    ws = websocket.create_connection(f"{sim.ws_url}?clientId={cid}", timeout=10)
    try:
        first = json.loads(ws.recv())
        assert first["type"] == "status" and first["data"]["sid"] == cid
        r = requests.post(f"{sim.url}/prompt", json={"prompt": graph, "client_id": cid, **extra})
        assert r.status_code == 200, r.text
        prompt_id = r.json()["prompt_id"]
        msgs = []
        while True:
            m = json.loads(ws.recv())
            msgs.append(m)
            if m["type"] == "executing" and m["data"]["node"] is None:
                assert m["data"]["prompt_id"] == prompt_id
                break
        return prompt_id, msgs
    finally:
        ws.close()


def test_happy_path_history_and_view(sim):
    prompt_id, msgs = run_with_ws(sim, CHAIN)
    types = [m["type"] for m in msgs]
    assert types[:4] == ["status", "status", "execution_start", "execution_cached"]
    assert types[-3:] == ["execution_success", "status", "executing"]
    assert types.count("executed") == 1
    hist = requests.get(f"{sim.url}/history/{prompt_id}").json()[prompt_id]
    assert hist["status"]["status_str"] == "success"
    assert hist["status"]["completed"] is True
    assert hist["prompt"][4] == ["4"]
    image = hist["outputs"]["4"]["images"][0]
    assert image["filename"].startswith("basic_") and image["type"] == "output"
    r = requests.get(f"{sim.url}/view", params=image)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)


def test_upload_then_load(sim):
    data = (FIXTURES / "peer_rgba.png").read_bytes()
    r = requests.post(
        f"{sim.url}/upload/image", files={"image": ("basic_rgba.png", data, "image/png")}
    )
    assert r.json() == {"name": "basic_rgba.png", "subfolder": "", "type": "input"}
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "basic_rgba.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "up"}},
    }
    prompt_id, _ = run_with_ws(sim, graph)
    hist = requests.get(f"{sim.url}/history/{prompt_id}").json()[prompt_id]
    assert hist["status"]["status_str"] == "success"
