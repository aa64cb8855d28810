"""Each fault flag of the simulator has the effect it promises."""

from __future__ import annotations

import json
import time
import uuid

import requests
import websocket

from comfybridge.sim.process import SimProcess

from .test_sim_behaviour import history, sdxl, submit_and_wait

TINY = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}},
}


def tiny(color: int) -> dict:
    graph = json.loads(json.dumps(TINY))
    graph["1"]["inputs"]["color"] = color
    return graph


def test_fail_rate_and_exec_log(tmp_path):
    log = tmp_path / "exec.jsonl"
    with SimProcess(args=["--fail-rate", "1", "--exec-log", str(log)]) as s:
        pid, msgs = submit_and_wait(s.url, tiny(1))
        err = next(m for m in msgs if m["type"] == "execution_error")["data"]
        assert err["exception_message"].endswith("\n")
        assert history(s.url, pid)["status"]["status_str"] == "error"
        submit_and_wait(s.url, tiny(1), prompt_id=pid)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["prompt_id"] for line in lines] == [pid, pid]


def test_http_error_rate_is_seeded():
    def pattern():
        with SimProcess(args=["--http-error-rate", "0.5", "--seed", "3"]) as s:
            codes = [requests.get(f"{s.url}/prompt").status_code for _ in range(30)]
            return codes

    first = pattern()
    assert set(first) == {200, 500}
    assert pattern() == first


def test_ws_drop_rate_drops_execution_messages():
    with SimProcess(args=["--ws-drop-rate", "1"]) as s:
        cid = uuid.uuid4().hex
        ws = websocket.create_connection(f"{s.ws_url}?clientId={cid}", timeout=5)
        try:
            pid = requests.post(
                f"{s.url}/prompt", json={"prompt": tiny(2), "client_id": cid}
            ).json()["prompt_id"]
            deadline = time.monotonic() + 5
            while not requests.get(f"{s.url}/history/{pid}").json():
                assert time.monotonic() < deadline
                time.sleep(0.02)
            ws.settimeout(0.3)
            types = []
            try:
                while True:
                    types.append(json.loads(ws.recv())["type"])
            except websocket.WebSocketTimeoutException:
                pass
        finally:
            ws.close()
        assert types and set(types) == {"status"}


def test_slow_accept_replies_after_the_run_started():
    with SimProcess(args=["--slow-accept-ms", "400"]) as s:
        cid = uuid.uuid4().hex
        ws = websocket.create_connection(f"{s.ws_url}?clientId={cid}", timeout=5)
        try:
            t0 = time.monotonic()
            r = requests.post(f"{s.url}/prompt", json={"prompt": tiny(3), "client_id": cid})
            assert time.monotonic() - t0 >= 0.4
            pid = r.json()["prompt_id"]
            # The prompt already ran while the reply was held back.
            assert history(s.url, pid)["status"]["completed"] is True
        finally:
            ws.close()


def test_crash_after(tmp_path):
    log = tmp_path / "exec.jsonl"
    s = SimProcess(args=["--crash-after", "2", "--exec-log", str(log)])
    with s:
        submit_and_wait(s.url, tiny(4))
        requests.post(f"{s.url}/prompt", json={"prompt": tiny(5)})
        deadline = time.monotonic() + 5
        while s.alive():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert len(log.read_text().splitlines()) == 2
        s.start()
        assert requests.get(f"{s.url}/history").json() == {}


def test_jitter_stretches_steps():
    with SimProcess(step_ms=20, args=["--jitter", "1", "--seed", "1"]) as s:
        t0 = time.monotonic()
        submit_and_wait(s.url, sdxl(steps=10, prefix="jitter"))
        assert time.monotonic() - t0 > 10 * 0.02 * 1.15
