"""Simulator behaviour beyond the recordings: SDXL-like graphs, determinism, faults."""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket
from PIL import Image

from comfybridge.sim.process import SimProcess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WORKFLOWS = Path(__file__).resolve().parent / "transcripts" / "workflows"


def sdxl(text="a lighthouse at dawn", seed=42, width=128, height=96, steps=5, prefix="sdxl"):
    return {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": width, "height": height, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["4", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
                "denoise": 1.0,
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": prefix}},
    }


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    data = tmp_path_factory.mktemp("sim")
    (data / "input").mkdir()
    for name in ("broken.png", "peer_mask.png", "peer_rgba.png"):
        shutil.copy(FIXTURES / name, data / "input" / name)
    with SimProcess(step_ms=20, data_dir=data) as s:
        yield s


def submit_and_wait(url, graph, *, ws_url=None, timeout=20.0, **extra):
    """POST with a client_id, follow the websocket to `executing` null; returns messages."""
    cid = uuid.uuid4().hex
    ws = websocket.create_connection(
        f"{ws_url or url.replace('http', 'ws') + '/ws'}?clientId={cid}", timeout=timeout
    )
    try:
        r = requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": cid, **extra})
        assert r.status_code == 200, r.text
        pid = r.json()["prompt_id"]
        msgs = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = ws.recv()
            if isinstance(raw, bytes):
                msgs.append({"type": "binary", "data": raw})
                continue
            m = json.loads(raw)
            msgs.append(m)
            if m["type"] == "executing" and m["data"] == {"node": None, "prompt_id": pid}:
                return pid, msgs
        raise AssertionError("no executing null")
    finally:
        ws.close()


def history(url, pid):
    return requests.get(f"{url}/history/{pid}").json()[pid]


def image_of(url, hist, node="9"):
    ref = hist["outputs"][node]["images"][0]
    r = requests.get(f"{url}/view", params=ref)
    assert r.status_code == 200
    return r.content


def test_playbook_minimal_client_works_unchanged(sim):
    graph = sdxl(steps=10, prefix="playbook")
    # What the playbook writes: harmless for ComfyUI, which ignores unknown inputs.
    graph["5"]["inputs"]["steps"] = 10
    graph["4"]["inputs"]["cfg"] = 7
    client_id = str(uuid.uuid4())
    r = requests.post(f"{sim.url}/prompt", json={"prompt": graph, "client_id": client_id})
    prompt_id = r.json()["prompt_id"]
    ws = websocket.create_connection(f"{sim.ws_url}?clientId={client_id}", timeout=10)
    try:
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and data["prompt_id"] == prompt_id:
                        break
    finally:
        ws.close()
    hist = requests.get(f"{sim.url}/history/{prompt_id}").json()[prompt_id]
    for node_output in hist["outputs"].values():
        for image in node_output.get("images", []):
            r = requests.get(f"{sim.url}/view", params=image)
            assert r.status_code == 200
            assert Image.open(io.BytesIO(r.content)).size == (128, 96)


def test_sampler_progress_and_previews(sim):
    t0 = time.monotonic()
    _, msgs = submit_and_wait(sim.url, sdxl(steps=6, seed=7, prefix="progress"))
    assert time.monotonic() - t0 >= 6 * 0.02
    progress = [m["data"] for m in msgs if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [
        (i, 6, "3") for i in range(1, 7)
    ]
    frames = [m["data"] for m in msgs if m["type"] == "binary"]
    assert len(frames) == 6
    assert all(
        f[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x02" and f[8:12] == b"\x89PNG" for f in frames
    )
    finished = [m for m in msgs if m["type"] == "progress_state"][-1]["data"]["nodes"]["3"]
    assert finished["state"] == "finished" and finished["value"] == 6


def test_render_is_deterministic_and_sensitive(sim):
    def pixels(**kw):
        pid, _ = submit_and_wait(sim.url, sdxl(steps=1, **kw))
        return Image.open(io.BytesIO(image_of(sim.url, history(sim.url, pid)))).tobytes()

    base = pixels(prefix="det_a")
    other = pixels(text="a red bicycle", prefix="det_b")
    again = pixels(prefix="det_c")
    assert base == again
    assert other != base
    assert pixels(seed=43, prefix="det_d") != base
    assert pixels(width=136, prefix="det_e") != base


def test_same_png_bytes_for_same_graph(sim):
    graph = sdxl(steps=1, prefix="bytes")
    first = image_of(sim.url, history(sim.url, submit_and_wait(sim.url, graph)[0]))
    submit_and_wait(sim.url, sdxl(steps=1, text="something else", prefix="bytes_other"))
    pid, msgs = submit_and_wait(sim.url, graph)
    cached = next(m for m in msgs if m["type"] == "execution_cached")["data"]["nodes"]
    assert cached != list(graph)
    assert image_of(sim.url, history(sim.url, pid)) == first


def test_identical_resubmission_is_cached(sim):
    graph = sdxl(steps=2, prefix="cached")
    pid1, _ = submit_and_wait(sim.url, graph)
    pid2, msgs = submit_and_wait(sim.url, graph)
    # Nothing runs: the only `executing` is the final one with node None.
    assert [m["data"]["node"] for m in msgs if m["type"] == "executing"] == [None]
    assert sorted(
        next(m for m in msgs if m["type"] == "execution_cached")["data"]["nodes"]
    ) == sorted(graph)
    assert history(sim.url, pid1)["outputs"] == history(sim.url, pid2)["outputs"]


def test_inpaint_composites_into_source(sim):
    requests.post(
        f"{sim.url}/upload/image",
        files={"image": ("inp.png", (FIXTURES / "peer_rgba.png").read_bytes(), "image/png")},
    )
    graph = sdxl(steps=1, prefix="inpaint")
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "inp.png"}}
    graph["11"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}}
    graph["12"] = {
        "class_type": "VAEEncodeForInpaint",
        "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "mask": ["11", 0], "grow_mask_by": 0},
    }
    graph["3"]["inputs"]["latent_image"] = ["12", 0]
    pid, _ = submit_and_wait(sim.url, graph)
    out = Image.open(io.BytesIO(image_of(sim.url, history(sim.url, pid)))).convert("RGB")
    src = Image.open(FIXTURES / "peer_rgba.png").convert("RGB")
    # An empty mask keeps the source everywhere.
    assert out.size == (src.width // 8 * 8, src.height // 8 * 8)
    assert out.tobytes() == src.crop((0, 0, *out.size)).tobytes()


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.api.json")), ids=lambda p: p.name)
def test_reference_workflows_run(sim, path):
    graph = json.loads(path.read_text())
    pid, msgs = submit_and_wait(sim.url, graph)
    assert history(sim.url, pid)["status"]["status_str"] == "success", msgs[-4:]


def test_corrupt_image_is_a_runtime_error(sim):
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    pid, msgs = submit_and_wait(sim.url, graph)
    err = next(m for m in msgs if m["type"] == "execution_error")["data"]
    assert err["exception_type"] == "PIL.UnidentifiedImageError"
    assert set(err) == {
        "prompt_id",
        "node_id",
        "node_type",
        "executed",
        "exception_message",
        "exception_type",
        "traceback",
        "current_inputs",
        "current_outputs",
        "timestamp",
    }
    assert history(sim.url, pid)["status"]["status_str"] == "error"


def test_counter_continues_after_restart(tmp_path):
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "r"}},
    }
    with SimProcess(data_dir=tmp_path) as s:
        pid, _ = submit_and_wait(s.url, graph)
        assert history(s.url, pid)["outputs"]["2"]["images"][0]["filename"] == "r_00001_.png"
        s.kill()
        s.start()
        assert requests.get(f"{s.url}/history").json() == {}
        graph["1"]["inputs"]["color"] = 2
        pid, _ = submit_and_wait(s.url, graph)
        assert history(s.url, pid)["outputs"]["2"]["images"][0]["filename"] == "r_00002_.png"
        assert requests.post(f"{s.url}/prompt", json={"prompt": graph}).json()["number"] == 1
