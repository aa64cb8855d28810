"""BackendPool: ready means healthy, capable and warmed up; the shortest queue wins; failures
back off exponentially and the backend is tried again when its backoff is over."""

from __future__ import annotations

import time

import pytest

from comfybridge.client import bearer_auth
from comfybridge.errors import ComfyUnavailable, WorkflowRejected
from comfybridge.pool import BackendPool, BackendSpec, NoBackendReady
from comfybridge.sim.process import SimProcess
from tests.comfybridge.pool_helpers import (
    BASE_REFINER,
    FakeClock,
    dead_url,
    exec_count,
    make_busy,
    tiny,
)


def test_it_chooses_the_backend_with_the_shortest_queue(a_b_c):
    a, b, c = a_b_c
    make_busy(a, 3)
    make_busy(c, 1)
    with BackendPool([a.url, b.url, c.url]) as pool:
        assert pool.choose() == b.url
        make_busy(b, 2)
        assert pool.choose() == c.url
        assert {s.url: s.queue_remaining for s in pool.status()} == {a.url: 3, b.url: 2, c.url: 1}


def test_it_skips_a_killed_backend_and_returns_to_it_after_its_backoff(a_b_c):
    a, b, _ = a_b_c
    make_busy(b, 1)
    with BackendPool([a.url, b.url], backoff_base=0.3, probe_timeout=2) as pool:
        assert pool.choose() == a.url
        a.kill()
        assert pool.choose() == b.url
        # Within the backoff the dead backend is not even asked.
        (status_a, _) = pool.status()
        assert status_a.state == "down" and "next try in" in status_a.reason
        assert status_a.failures == 1
        a.start()
        back = time.monotonic()
        deadline = back + 10
        while pool.choose() != a.url:
            assert time.monotonic() < deadline, "the restarted backend never came back"
            time.sleep(0.02)
        assert pool.status()[0].failures == 0


def test_failures_back_off_exponentially_up_to_the_cap():
    clock = FakeClock()
    url = dead_url()
    with BackendPool([url], backoff_base=1, backoff_cap=5, clock=clock) as pool:
        delays = []
        for _ in range(5):
            with pytest.raises(NoBackendReady) as exc:
                pool.choose()
            assert exc.value.retryable
            assert "Connection refused" in exc.value.reasons[url] or "refused" in str(exc.value)
            reason = pool.status()[0].reason  # not probed again: still backing off
            delays.append(float(reason.rsplit("next try in ", 1)[1].rstrip("s")))
            clock.now += delays[-1]
        assert delays == [1, 2, 4, 5, 5]


def test_reported_failures_count_only_when_the_backend_is_at_fault(a_b_c):
    a, b, _ = a_b_c
    make_busy(b, 1)
    clock = FakeClock()
    with BackendPool([a.url, b.url], clock=clock, backoff_base=10) as pool:
        assert not pool.report_failure(a.url, WorkflowRejected(["bad input"]))
        assert pool.choose() == a.url
        assert pool.report_failure(a.url, ComfyUnavailable("POST /prompt: HTTP 502"))
        assert pool.choose() == b.url
        assert "HTTP 502" in pool.status()[0].reason
        pool.report_success(a.url)
        assert pool.choose() == a.url


def test_a_backend_lacking_a_checkpoint_or_class_is_not_chosen(a_b_c):
    a, _, _ = a_b_c
    with SimProcess(args=["--checkpoints", "sd_xl_base_1.0.safetensors"]) as base_only:
        make_busy(a, 2)
        with BackendPool([base_only.url, a.url]) as pool:
            assert pool.choose() == base_only.url  # any graph: the idle one
            assert pool.choose(BASE_REFINER) == a.url  # needs the refiner: the busy one
            graph = {**BASE_REFINER, "30": {"class_type": "NoSuchNode", "inputs": {}}}
            with pytest.raises(NoBackendReady) as exc:
                pool.choose(graph)
    # Nowhere has the class: trying again later cannot help.
    assert not exc.value.retryable
    assert exc.value.reasons[a.url] == f"node class 'NoSuchNode' (node 30) is not on {a.url}"
    assert "checkpoint 'sd_xl_refiner_1.0.safetensors' (node 10" in exc.value.reasons[base_only.url]


def test_no_backend_ready_names_why_each_is_not(a_b_c):
    a, _, _ = a_b_c
    dead = dead_url()
    with SimProcess(args=["--checkpoints", "sd_xl_base_1.0.safetensors"]) as base_only:
        pool = BackendPool([dead, base_only.url, a.url], warmup_graph=tiny(), auto_warm=False)
        with pool, pytest.raises(NoBackendReady) as exc:
            pool.choose(BASE_REFINER)
    reasons = exc.value.reasons
    assert reasons[dead].startswith("down (GET /system_stats")
    assert "checkpoint 'sd_xl_refiner_1.0.safetensors'" in reasons[base_only.url]
    assert reasons[a.url] == "not warmed up (run pool.warm_up())"
    assert exc.value.retryable
    assert str(exc.value).startswith(f"no ComfyUI backend is ready: {dead}: down (")


def test_a_backend_is_ready_only_after_the_warm_up_ran_once_since_it_started(tmp_path):
    log = tmp_path / "exec.jsonl"
    warmup = tiny()
    with SimProcess(args=["--exec-log", str(log)]) as sim:
        pool = BackendPool([sim.url], warmup_graph=warmup)
        with pytest.raises(NoBackendReady, match=r"warming up \(warm-up queued now\)"):
            pool.choose()
        assert pool.choose(wait=10) == sim.url
        assert exec_count(log, pool.warmup_id) == 1
        # Another worker process (its own pool) sees the same backend as warm already.
        with BackendPool([sim.url], warmup_graph=warmup) as other:
            assert other.choose() == sim.url
        assert exec_count(log, pool.warmup_id) == 1
        # A restart unloads everything: cold again, warmed again.
        sim.kill()
        sim.start()
        with pytest.raises(NoBackendReady, match="warming up"):
            pool.choose()
        assert pool.choose(wait=10) == sim.url
        assert exec_count(log, pool.warmup_id) == 2
        pool.close()


def test_warm_up_can_be_run_explicitly(a_b_c):
    a, b, _ = a_b_c
    with BackendPool([a.url, b.url], warmup_graph=tiny(), auto_warm=False) as pool:
        took = pool.warm_up(a.url, timeout=10)
        assert set(took) == {a.url} and took[a.url] >= 0
        assert pool.choose() == a.url
        assert pool.status()[1].state == "cold"


def test_a_failing_warm_up_backs_off(a_b_c):
    a, _, _ = a_b_c
    broken = {"1": {"class_type": "LoadImage", "inputs": {"image": "no_such_file.png"}}}
    broken["2"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    with BackendPool([a.url], warmup_graph=broken) as pool, pytest.raises(NoBackendReady) as exc:
        pool.choose()
    assert "warm-up workflow rejected" in exc.value.reasons[a.url]


def test_headers_go_to_each_backend(tmp_path):
    with SimProcess(args=["--auth", "t1"]) as one, SimProcess(args=["--auth", "t2"]) as two:
        specs = [BackendSpec(one.url, bearer_auth("t1")), two.url]
        with BackendPool(specs, headers={two.url: bearer_auth("t2")}) as pool:
            assert {s.state for s in pool.status()} == {"ready"}
            with pool.client(two.url) as client:
                assert client.health().ok
        with BackendPool([one.url]) as pool, pytest.raises(NoBackendReady) as exc:
            pool.choose()
        assert "HTTP 401 Unauthorized" in exc.value.reasons[one.url]


def test_url_credentials_are_kept_out_of_the_chosen_url(a_b_c):
    a, _, _ = a_b_c
    with_creds = a.url.replace("http://", "http://ann:pw@")
    with BackendPool([with_creds]) as pool:
        assert pool.urls == [a.url]
        assert pool.choose() == a.url
        with pool.client(a.url) as client:
            assert client.headers["Authorization"].startswith("Basic ")
