"""Pool state stores: MemoryState in the process, RedisState shared by processes (real Redis).

Both keep the same facts the same way; RedisState's writes stay right when several processes
write at once, and what one pool learns, another pool on the same Redis knows.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis as redis_lib

from comfybridge.errors import ComfyUnavailable
from comfybridge.pool import BackendPool
from comfybridge.poolstate import MemoryState, RedisState
from tests.comfybridge.pool_helpers import FakeClock, dead_url

URL = "http://gpu-1:8188"


def doubling(n: int) -> float:
    return min(5.0, 2.0 ** (n - 1))


@pytest.fixture
def redis_conn(redis_url):
    conn = redis_lib.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def prefix(redis_conn):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:pool:{uuid.uuid4().hex}:"
    yield prefix
    for key in redis_conn.scan_iter(match=f"{prefix}*"):
        redis_conn.delete(key)


@pytest.fixture(params=["memory", "redis", "redis-decoded"])
def store(request, redis_url, prefix):
    if request.param == "memory":
        yield MemoryState()
        return
    # A client may answer bytes or str (decode_responses): the store reads both.
    conn = redis_lib.from_url(redis_url, decode_responses=request.param == "redis-decoded")
    yield RedisState(conn, prefix=prefix)
    conn.close()


def test_an_unknown_backend_has_a_clean_state(store):
    state = store.load([URL])[URL]
    assert (state.failures, state.retry_at, state.last_error) == (0, 0.0, "")
    assert state.queue_remaining is None and state.last_model == () and state.boot == ""


def test_failures_count_up_and_set_the_backoff_until_a_success(store):
    assert store.record_failure(URL, "refused", now=100.0, delay=doubling) == (1, 101.0)
    assert store.record_failure(URL, "refused again", now=101.0, delay=doubling) == (2, 103.0)
    assert store.record_failure(URL, "still", now=103.0, delay=doubling) == (3, 107.0)
    assert store.record_failure(URL, "capped", now=107.0, delay=doubling) == (4, 112.0)
    state = store.load([URL])[URL]
    assert (state.failures, state.retry_at, state.last_error) == (4, 112.0, "capped")
    store.record_success(URL)
    state = store.load([URL])[URL]
    assert (state.failures, state.retry_at, state.last_error) == (0, 0.0, "")


def test_a_failure_forgets_that_the_backend_was_healthy(store):
    assert store.record_health(URL, boot="b1", healthy_until=150.0, queued=2, now=145.0) == ""
    assert store.load([URL])[URL].healthy_until == 150.0
    store.record_failure(URL, "reset", now=146.0, delay=doubling)
    assert store.load([URL])[URL].healthy_until == 0.0


def test_the_boot_signature_is_swapped_and_the_old_one_returned(store):
    assert store.record_health(URL, boot="b1", healthy_until=5.0, queued=0, now=1.0) == ""
    assert store.record_health(URL, boot="b1", healthy_until=6.0, queued=3, now=2.0) == "b1"
    assert store.record_health(URL, boot="b2", healthy_until=7.0, queued=1, now=3.0) == "b1"
    state = store.load([URL])[URL]
    assert (state.boot, state.queue_remaining, state.queue_read_at) == ("b2", 1, 3.0)


def test_a_submission_counts_into_the_queue_and_names_the_model(store):
    store.record_queue(URL, 2, now=10.0)
    store.record_submitted(URL, ("base.safetensors",))
    store.record_submitted(URL, ())  # loads no model: the loaded one stays
    state = store.load([URL])[URL]
    assert state.queue_remaining == 4 and state.queue_read_at == 10.0
    assert state.last_model == ("base.safetensors",)
    store.record_loaded(URL, ())
    assert store.load([URL])[URL].last_model == ()


def test_one_claim_on_the_warm_up_at_a_time(store):
    now = time.time()
    assert store.claim_warmup(URL, now=now, until=now + 30)
    assert not store.claim_warmup(URL, now=now + 1, until=now + 31)
    store.release_warmup(URL)
    now = time.time()
    assert store.claim_warmup(URL, now=now, until=now + 0.2)
    # A claim runs out by itself: a process that died after claiming blocks no one for long.
    time.sleep(0.3)
    now = time.time()
    assert store.claim_warmup(URL, now=now, until=now + 30)


def test_backends_are_kept_apart(store):
    other = "http://gpu-2:8188"
    store.record_failure(URL, "down", now=1.0, delay=doubling)
    states = store.load([URL, other])
    assert states[URL].failures == 1 and states[other].failures == 0


def test_concurrent_failures_on_redis_are_all_counted(redis_url, prefix):
    def fail_25_times():
        conn = redis_lib.from_url(redis_url)
        state = RedisState(conn, prefix=prefix)
        for _ in range(25):
            state.record_failure(URL, "refused", now=time.time(), delay=doubling)
        conn.close()

    threads = [threading.Thread(target=fail_25_times) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with redis_lib.from_url(redis_url) as conn:
        assert RedisState(conn, prefix=prefix).load([URL])[URL].failures == 100


def test_redis_keeps_wall_clock_times_and_lets_keys_expire(redis_conn, prefix):
    state = RedisState(redis_conn, prefix=prefix, ttl=60)
    before = time.time()
    _, retry_at = state.record_failure(URL, "refused", now=time.time(), delay=doubling)
    assert before + 1 <= retry_at <= time.time() + 1
    assert abs(float(redis_conn.hget(f"{prefix}{URL}", "retry_at")) - retry_at) < 1e-5
    assert 0 < redis_conn.ttl(f"{prefix}{URL}") <= 60


def test_two_pools_on_one_redis_share_the_backoff(redis_url, prefix, http_trap):
    clock = FakeClock()
    one = redis_lib.from_url(redis_url)
    two = redis_lib.from_url(redis_url)
    first = BackendPool([http_trap.url], state=RedisState(one, prefix=prefix), clock=clock)
    second = BackendPool([http_trap.url], state=RedisState(two, prefix=prefix), clock=clock)
    with first, second:
        assert first.report_failure(http_trap.url, ComfyUnavailable("POST /prompt: HTTP 502"))
        (status,) = second.status()
        assert status.state == "down" and status.failures == 1
        assert status.reason == "down (POST /prompt: HTTP 502); next try in 1.0s"
        # Backing off means not asking: the other pool never contacted the backend.
        assert http_trap.requests == []
        clock.now += 1
        assert second.report_failure(http_trap.url)
        assert first.status()[0].reason.endswith("next try in 2.0s")
        second.report_success(http_trap.url)
        assert first.state.load([http_trap.url])[http_trap.url].failures == 0
    one.close()
    two.close()


def test_a_failure_seen_by_another_process_keeps_this_one_away(redis_url, prefix):
    url = dead_url()
    child = f"""
import redis
from comfybridge.pool import BackendPool, NoBackendReady
from comfybridge.poolstate import RedisState
pool = BackendPool([{url!r}], state=RedisState(redis.from_url({redis_url!r}), prefix={prefix!r}),
                   backoff_base=30)
try:
    pool.choose()
except NoBackendReady as exc:
    print(exc.statuses[0].failures)
"""
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "1", out.stderr
    with redis_lib.from_url(redis_url) as conn:
        pool = BackendPool([url], state=RedisState(conn, prefix=prefix))
        with pool:
            (status,) = pool.status()
    assert status.state == "down" and status.failures == 1
    # The child's 30 s backoff, as much of it as is left (shown to a tenth of a second).
    left = re.search(r"next try in ([\d.]+)s", status.reason)
    assert "refused" in status.reason and left and 20 < float(left.group(1)) <= 30
