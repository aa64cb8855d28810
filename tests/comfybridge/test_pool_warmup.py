"""Warm-up: a UUID prompt id every process derives alike (newer ComfyUI refuses others), one
warm-up per backend start however many pools look at once, and a restart seen either by the
history forgetting the warm-up or by the boot signature of /system_stats changing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis as redis_lib
import requests

from comfybridge.client import ComfyClient
from comfybridge.pool import HEALTH_TTL, BackendPool, NoBackendReady, boot_signature
from comfybridge.poolstate import RedisState
from comfybridge.sim.process import SimProcess
from tests.comfybridge.pool_helpers import BASE_REFINER, FakeClock, exec_count, tiny

WARMUP = tiny(color=0x336699)


def ready_within(pool: BackendPool, seconds: float = 10.0) -> str:
    """``choose()`` until a backend is ready (``wait=`` needs a clock that moves)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return pool.choose()
        except NoBackendReady:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def prefix(redis_url):
    prefix = f"test:warmup:{uuid.uuid4().hex}:"
    yield prefix
    with redis_lib.from_url(redis_url) as conn:
        for key in conn.scan_iter(match=f"{prefix}*"):
            conn.delete(key)


def test_the_warm_up_prompt_id_is_a_uuid_that_every_process_derives_alike():
    pool = BackendPool(["http://gpu-1:8188"], warmup_graph=WARMUP)
    assert str(uuid.UUID(pool.warmup_id)) == pool.warmup_id  # canonical: lowercase, hyphens
    reordered = dict(reversed(list(WARMUP.items())))
    assert BackendPool(["http://gpu-2:8188"], warmup_graph=reordered).warmup_id == pool.warmup_id
    assert BackendPool(["http://gpu-1:8188"], warmup_graph=tiny(1)).warmup_id != pool.warmup_id
    code = f"from comfybridge.pool import warmup_prompt_id; print(warmup_prompt_id({WARMUP!r}))"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == pool.warmup_id


def test_the_warm_up_runs_on_a_server_that_demands_uuid_prompt_ids(tmp_path):
    log = tmp_path / "exec.jsonl"
    with SimProcess(args=["--require-uuid-prompt-ids", "--exec-log", str(log)]) as sim:
        refused = requests.post(f"{sim.url}/prompt", json={"prompt": WARMUP, "prompt_id": "w-1"})
        assert refused.json()["error"]["type"] == "invalid_prompt_id"
        with BackendPool([sim.url], warmup_graph=WARMUP) as pool:
            assert pool.choose(wait=10) == sim.url
            assert exec_count(log, pool.warmup_id) == 1


def test_a_restart_on_the_same_port_is_warmed_again_once_for_all_processes(
    tmp_path, redis_url, prefix
):
    log = tmp_path / "exec.jsonl"

    def eight_processes_look_at_once(url: str) -> None:
        def look():
            with redis_lib.from_url(redis_url) as conn:
                state = RedisState(conn, prefix=prefix)
                with BackendPool([url], state=state, warmup_graph=WARMUP) as pool:
                    try:
                        pool.choose()
                    except NoBackendReady as exc:
                        assert exc.statuses[0].state == "warming", exc

        threads = [threading.Thread(target=look) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    with SimProcess(args=["--exec-log", str(log)]) as sim:
        conn = redis_lib.from_url(redis_url)
        pool = BackendPool([sim.url], state=RedisState(conn, prefix=prefix), warmup_graph=WARMUP)
        with pool:
            eight_processes_look_at_once(sim.url)
            assert ready_within(pool) == sim.url
            assert exec_count(log, pool.warmup_id) == 1
            sim.kill()
            sim.start()
            eight_processes_look_at_once(sim.url)
            assert ready_within(pool) == sim.url
            assert exec_count(log, pool.warmup_id) == 2
        conn.close()


def test_the_boot_signature_holds_between_calls_and_changes_with_the_arguments():
    with SimProcess() as sim, ComfyClient(sim.url) as client:
        first = boot_signature(client.system_stats())
        assert all(boot_signature(client.system_stats()) == first for _ in range(5))
        sim.kill()
        sim.start()
        # The same installation started the same way looks the same: the history tells.
        assert boot_signature(client.system_stats()) == first
        sim.kill()
        sim.args += ["--checkpoints", "sd_xl_base_1.0.safetensors"]
        sim.start()
        assert boot_signature(client.system_stats()) != first


def test_a_changed_system_stats_means_a_restart_even_where_the_history_kept_the_warm_up(
    tmp_path,
):
    log = tmp_path / "exec.jsonl"
    clock = FakeClock(time.time())
    with (
        SimProcess(args=["--exec-log", str(log)]) as sim,
        BackendPool([sim.url], warmup_graph=WARMUP, clock=clock) as pool,
    ):
        assert ready_within(pool) == sim.url
        sim.kill()
        sim.args += ["--step-ms", "1"]
        sim.start()
        # As a gateway in front of a backend could: its history shows the warm-up done.
        with ComfyClient(sim.url) as client:
            client.run(WARMUP, prompt_id=pool.warmup_id, timeout=10)
        assert exec_count(log, pool.warmup_id) == 2
        assert ready_within(pool) == sim.url  # /system_stats not read again yet
        clock.now += HEALTH_TTL + 1
        with pytest.raises(NoBackendReady, match=r"warming up \(warm-up queued now\)"):
            pool.choose()
        assert ready_within(pool) == sim.url
        assert exec_count(log, pool.warmup_id) == 3


def test_after_a_restart_with_other_models_the_pool_reads_them_again():
    clock = FakeClock(time.time())
    with (
        SimProcess() as sim,
        BackendPool([sim.url], clock=clock, capabilities_ttl=3600) as pool,
    ):
        assert pool.choose(BASE_REFINER) == sim.url
        sim.kill()
        sim.args += ["--checkpoints", "sd_xl_base_1.0.safetensors"]
        sim.start()
        clock.now += HEALTH_TTL + 1
        (status,) = pool.status(BASE_REFINER)
    assert status.state == "incapable"
    assert status.missing == ("checkpoint 'sd_xl_refiner_1.0.safetensors'",)
