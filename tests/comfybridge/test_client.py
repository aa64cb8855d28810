"""ComfyClient against a backend: the simulator, or a real ComfyUI at COMFYUI_URL.

Tests taking ``comfy_url`` run twice: on the simulator (id ``sim_backend``) and, marked
``comfyui_real``, on the ComfyUI named by COMFYUI_URL (skipped when unset). They use only
model-free graphs, so any ComfyUI can run them. Tests named ``test_sim_*`` need simulator
controls (slow accept, kill and restart, execution log).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image

from comfybridge.client import ComfyClient
from comfybridge.contract import Contract, stamp_save_prefixes
from comfybridge.errors import (
    ComfyUnavailable,
    DownloadTooLarge,
    ExecutionFailed,
    Interrupted,
    PromptLost,
    RunTimeout,
    WorkflowRejected,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def swatch(width=64, height=64, color=0xFF8000, prefix="cb_swatch"):
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def slow_graph(prefix="cb_slow", blurs=6):
    """Large blurs: about 1.5 s per blur on a 2-core CPU ComfyUI; slow on a throttled sim.

    The colour is random so that no node's result can come from ComfyUI's cache.
    """
    color = uuid.uuid4().int % 0x1000000
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 1024, "height": 1024, "batch_size": 1, "color": color},
        }
    }
    source = "1"
    for n in range(2, 2 + blurs):
        graph[str(n)] = {
            "class_type": "ImageBlur",
            "inputs": {"image": [source, 0], "blur_radius": 31, "sigma": 10.0},
        }
        source = str(n)
    graph["99"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [source, 0], "filename_prefix": prefix},
    }
    return graph


def fresh(graph):
    """The graph with a run nonce, so no cached result of an earlier test is replayed."""
    return stamp_save_prefixes(graph, uuid.uuid4().hex[:10])


# -- backends --------------------------------------------------------------------------------


def _sim_class():
    try:
        from comfybridge.sim.process import SimProcess
    except ImportError:
        pytest.skip("comfybridge.sim is not available")
    return SimProcess


@pytest.fixture(scope="module")
def sim():
    """A simulator whose image nodes take some time, so progress and interrupts can be seen."""
    with _sim_class()(step_ms=20, args=("--ms-per-megapixel", "150")) as proc:
        yield proc


@pytest.fixture(
    params=[
        pytest.param("sim", id="sim_backend"),
        pytest.param("real", id="real_backend", marks=pytest.mark.comfyui_real),
    ]
)
def comfy_url(request):
    if request.param == "real":
        url = os.environ.get("COMFYUI_URL", "").split(",")[0].strip()
        if not url:
            pytest.skip("COMFYUI_URL is not set")
        return url
    return request.getfixturevalue("sim").url


@pytest.fixture
def client(comfy_url):
    with ComfyClient(comfy_url, timeout=10) as c:
        yield c


# -- both backends ---------------------------------------------------------------------------


def test_a_run_reports_progress_and_returns_its_image(client):
    contract = Contract.from_schema(
        json.loads((ROOT / "params/color_swatch.schema.json").read_text())
    )
    graph = json.loads((ROOT / "workflows/color_swatch.api.json").read_text())
    params = contract.validate({"color": 0x3366CC, "width": 96, "height": 80})
    seen = []
    result = client.run(
        fresh(contract.patch(graph, params)), timeout=60, on_progress=seen.append, contract=contract
    )
    assert [o.node_id for o in result.outputs] == ["3"]
    assert result.history["status"]["status_str"] == "success"
    image = Image.open(io.BytesIO(client.download(result.outputs[0])))
    assert image.size == (96, 80)
    assert seen and seen[-1].fraction == 1.0
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
    assert any(p.node is not None for p in seen)


def test_a_rejected_graph_names_node_input_and_property(client):
    contract = Contract.from_schema(
        {
            "type": "object",
            "properties": {"size": {"type": "integer", "x-bind": ["1.inputs.width"]}},
        }
    )
    graph = contract.patch(swatch(), {"size": 0})  # patch does not validate: the server must
    with pytest.raises(WorkflowRejected) as exc:
        client.submit(graph, contract=contract)
    assert exc.value.messages == [
        "node 1 (EmptyImage) input 'width' (property 'size'): Value 0 smaller than min of 1"
    ]
    assert exc.value.node_errors["1"]["class_type"] == "EmptyImage"
    assert not exc.value.retryable


def test_an_unknown_class_is_rejected(client):
    graph = swatch()
    graph["1"]["class_type"] = "NoSuchNode"
    with pytest.raises(WorkflowRejected, match="NoSuchNode does not exist"):
        client.submit(graph)


def test_a_200_with_node_errors_is_a_rejection(client):
    graph = fresh(swatch())
    graph["3"] = {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["1", 0],
            "upscale_method": "magic",
            "width": 32,
            "height": 32,
            "crop": "disabled",
        },
    }
    graph["4"] = {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}}
    with pytest.raises(WorkflowRejected) as exc:
        client.submit(graph)
    assert any("node 3 (ImageScale) input 'upscale_method'" in m for m in exc.value.messages)


def test_a_node_failure_is_an_execution_error(client):
    broken = client.upload_image((FIXTURES / "broken.png").read_bytes(), "broken.png")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": broken.load_name}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cb_x"}},
    }
    with pytest.raises(ExecutionFailed) as exc:
        client.run(fresh(graph), timeout=60)
    assert (exc.value.node_id, exc.value.node_type) == ("1", "LoadImage")
    assert exc.value.exception_message
    assert not exc.value.retryable


def test_an_upload_is_named_by_its_content_and_loads(client):
    data = (FIXTURES / "peer_rgba.png").read_bytes()
    first = client.upload_image(data, "photo.PNG")
    again = client.upload_image(data, "other-name.png")
    assert first == again
    assert first.filename == hashlib.sha256(data).hexdigest()[:32] + ".png"
    assert first.load_name == first.filename and first.type == "input"
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": first.load_name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "cb_up"},
        },
    }
    result = client.run(fresh(graph), timeout=60)
    assert Image.open(io.BytesIO(client.download(result.outputs[0]))).size == (128, 128)


def test_an_upload_into_a_subfolder_loads_by_its_path(client):
    data = (FIXTURES / "peer_mask.png").read_bytes()
    ref = client.upload_image(data, "mask.png", subfolder="cb_masks")
    assert ref.load_name == f"cb_masks/{ref.filename}"


def test_download_refuses_more_than_the_limit(client):
    result = client.run(fresh(swatch(256, 256)), timeout=60)
    with pytest.raises(DownloadTooLarge):
        client.download(result.outputs[0], max_bytes=100)


def test_an_interrupted_run_raises_interrupted(client, comfy_url):
    with ComfyClient(comfy_url) as other:
        submitted = client.submit(fresh(slow_graph()))
        prompt_id = submitted["prompt_id"]
        _when_running(other, prompt_id)
        assert other.cancel(prompt_id) == "interrupted"
        with pytest.raises(Interrupted):
            client.wait(prompt_id, timeout=60)


def test_cancel_removes_a_pending_prompt_without_touching_the_running_one(client, comfy_url):
    with ComfyClient(comfy_url) as other:
        running = client.submit(fresh(slow_graph(blurs=2)))["prompt_id"]
        pending = client.submit(fresh(swatch()))["prompt_id"]
        assert other.cancel(pending) == "deleted"
        assert other.locate(pending) is None
        assert client.wait(running, timeout=60).outputs


def test_messages_of_other_prompts_are_kept_for_later(client):
    first = client.submit(fresh(slow_graph(prefix="cb_a", blurs=1)))["prompt_id"]
    second = client.submit(fresh(swatch(prefix="cb_b")))["prompt_id"]
    # Waiting on the second reads the first's messages off the socket; they must be kept.
    client.wait(second, timeout=60)
    seen = []
    result = client.wait(first, timeout=60, on_progress=seen.append)
    assert result.outputs
    assert {"1", "2"} <= {p.node for p in seen}


def test_messages_sent_before_the_post_returns_are_not_lost(client):
    # The first node's messages are produced at once, often before the POST's reply: the
    # socket must already be listening, so the first node is seen starting.
    seen = []
    client.run(fresh(slow_graph(blurs=1)), timeout=60, on_progress=seen.append)
    assert seen[0].node == "1" or "1" in {p.node for p in seen}
    assert seen[-1].fraction == 1.0


def test_a_prompt_submitted_by_another_client_is_seen_ending_without_a_poll(comfy_url):
    # ComfyUI sends a prompt's messages only to the socket that submitted it. A client that
    # follows it from elsewhere (a worker after another one submitted it ahead) learns of
    # its end from the queue change every socket is told of, not from its next poll.
    with (
        ComfyClient(comfy_url) as submitter,
        ComfyClient(comfy_url, poll_interval=600) as follower,
    ):
        prompt_id = submitter.submit(fresh(slow_graph()), follow=False)["prompt_id"]
        result = follower.wait(prompt_id, timeout=60)
    assert [o.node_id for o in result.outputs] == ["99"]


def test_a_dropped_socket_is_reconnected(client):
    dropped = []

    def drop_once(progress):
        if not dropped:
            dropped.append(progress)
            client._follower.ws.sock.shutdown(socket.SHUT_RDWR)

    result = client.run(fresh(slow_graph(blurs=2)), timeout=60, on_progress=drop_once)
    assert dropped and result.outputs


def test_a_deadline_raises_run_timeout(client):
    prompt_id = client.submit(fresh(slow_graph(blurs=3)))["prompt_id"]
    try:
        with pytest.raises(RunTimeout) as exc:
            client.wait(prompt_id, timeout=0.3)
        assert exc.value.retryable
    finally:
        client.cancel(prompt_id)


def test_system_endpoints_answer(client):
    assert "system" in client.system_stats()
    assert "EmptyImage" in client.object_info()
    assert set(client.queue()) >= {"queue_running", "queue_pending"}


def _when_running(client, prompt_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.locate(prompt_id) == "running":
            return
        time.sleep(0.02)
    pytest.fail(f"{prompt_id} never ran")


# -- simulator only --------------------------------------------------------------------------


def _executions(log_path: Path, prompt_id: str) -> int:
    if not log_path.exists():
        return 0
    count = 0
    for line in log_path.read_text().splitlines():
        if prompt_id in line:
            try:
                record = json.loads(line)
            except ValueError:
                record = {}
            if record.get("prompt_id", prompt_id) == prompt_id:
                count += 1
    return count


def test_sim_a_post_that_times_out_after_acceptance_runs_once(tmp_path):
    log = tmp_path / "exec.log"
    args = ("--slow-accept-ms", "1500", "--exec-log", str(log))
    with _sim_class()(args=args) as proc, ComfyClient(proc.url, timeout=0.5) as client:
        reply = client.submit(fresh(swatch()), ambiguous_grace=5)
        prompt_id = reply["prompt_id"]
        assert reply.get("recovered")
        assert client.wait(prompt_id, timeout=30).outputs
        time.sleep(1.5)  # let a second execution show up if there were one
        assert _executions(log, prompt_id) == 1


def test_sim_retrying_with_the_same_prompt_id_does_not_run_twice(tmp_path):
    log = tmp_path / "exec.log"
    with _sim_class()(args=("--exec-log", str(log))) as proc, ComfyClient(proc.url) as client:
        prompt_id = client.submit(fresh(swatch()))["prompt_id"]
        client.wait(prompt_id, timeout=30)
        again = client.submit(fresh(swatch()), prompt_id=prompt_id, skip_if_known=True)
        assert again.get("known")
        time.sleep(0.5)
        assert _executions(log, prompt_id) == 1


def _timing_line(path: Path, prompt_id: str, timeout: float = 5.0) -> dict:
    """The simulator's timing-log line of a prompt (written just after its history entry)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        for line in lines:
            if json.loads(line)["prompt_id"] == prompt_id:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no timing line for {prompt_id}")


def test_sim_a_run_result_carries_the_execution_times_of_its_history(tmp_path):
    timing = tmp_path / "timing.jsonl"
    args = ("--ms-per-megapixel", "400", "--timing-log", str(timing))
    with _sim_class()(args=args) as proc, ComfyClient(proc.url) as client:
        before = time.time()
        result = client.run(fresh(swatch(width=512, height=512)), timeout=30)
        after = time.time()
        logged = _timing_line(timing, result.prompt_id)
    assert logged["end_event"] == "execution_success"
    assert result.execution_start == logged["execution_start"] / 1000
    assert result.execution_end == logged["end"] / 1000
    # Epoch seconds on the backend's clock (the same machine here), a run's worth apart.
    assert before - 0.01 <= result.execution_start < result.execution_end <= after + 0.01


def test_sim_a_prompt_forgotten_by_a_restart_is_lost(tmp_path):
    SimProcess = _sim_class()
    with (
        SimProcess(step_ms=20, args=("--ms-per-megapixel", "400")) as proc,
        ComfyClient(proc.url, timeout=3, lost_grace=1.0) as client,
    ):
        prompt_id = client.submit(fresh(slow_graph()))["prompt_id"]
        proc.kill()
        restarted = threading.Timer(1.0, proc.start)
        restarted.start()
        try:
            with pytest.raises(PromptLost) as exc:
                client.wait(prompt_id, timeout=60)
        finally:
            restarted.join()
        assert exc.value.retryable
        # The client works again with the restarted backend.
        assert client.run(fresh(swatch()), timeout=30).outputs


def test_sim_lost_messages_and_5xx_replies_neither_fail_nor_duplicate_runs(tmp_path):
    log = tmp_path / "exec.log"
    args = ("--ws-drop-rate", "0.3", "--http-error-rate", "0.15", "--seed", "7")
    args += ("--exec-log", str(log))
    with (
        _sim_class()(args=args) as proc,
        ComfyClient(proc.url, poll_interval=0.3, lost_grace=2.0) as client,
    ):
        done = []
        for n in range(8):
            prompt_id = f"fault-{n}-{uuid.uuid4().hex[:8]}"
            graph = fresh(swatch(color=n))
            for _attempt in range(10):  # how a job queue would retry: same id, look first
                try:
                    client.submit(graph, prompt_id=prompt_id, skip_if_known=True)
                    done.append(client.wait(prompt_id, timeout=30).prompt_id)
                    break
                except ComfyUnavailable:
                    continue
        assert len(done) == 8
        time.sleep(0.5)
        assert all(_executions(log, prompt_id) == 1 for prompt_id in done)


def test_sim_oversized_websocket_frames_are_refused_without_failing_the_run():
    # Sampler previews arrive as binary frames bigger than this limit: the client drops the
    # socket rather than buffer them, reconnects, and still reads the outcome from /history.
    graph = json.loads((ROOT / "workflows/sdxl_base_refiner.api.json").read_text())
    with (
        _sim_class()(step_ms=5) as proc,
        ComfyClient(proc.url, max_frame_bytes=256, poll_interval=0.3) as client,
    ):
        result = client.run(fresh(graph), timeout=60)
        assert [o.node_id for o in result.saved] == ["9"]
