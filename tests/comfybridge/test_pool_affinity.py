"""Model affinity: a graph goes where its checkpoint was last submitted, unless that queue is
more than ``affinity_slack`` prompts longer than the shortest; a backend with nothing recorded
beats one that would have to switch; ``affinity=False`` is plain shortest-queue."""

from __future__ import annotations

import time

import pytest
import redis as redis_lib

from comfybridge.pool import BackendPool, PoolFull, model_key
from comfybridge.poolstate import MemoryState, RedisState
from tests.comfybridge.pool_helpers import (
    BASE,
    BASE_REFINER,
    INPAINT,
    REFINER,
    FakeClock,
    make_busy,
    make_idle,
    sdxl,
)


def test_the_model_key_is_the_sorted_checkpoints_and_diffusion_models():
    assert model_key(BASE_REFINER) == (BASE, REFINER)
    assert model_key(sdxl(INPAINT)) == (INPAINT,)
    graph = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": "style.safetensors"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ["9", 0]}},
    }
    # LoRAs and VAEs load in a moment; a linked name is not known before the run.
    assert model_key(graph) == ("flux1-dev.safetensors",)
    assert model_key({"1": {"class_type": "EmptyImage", "inputs": {}}}) == ()
    assert model_key(None) == ()


def test_a_graph_goes_where_its_model_was_last_submitted(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url]) as pool:
        assert pool.note_submitted(a.url, sdxl(BASE)) == (BASE,)
        pool.note_submitted(b.url, sdxl(REFINER))
        for _ in range(5):
            assert pool.choose(sdxl(BASE, seed=7)) == a.url
            assert pool.choose(sdxl(REFINER)) == b.url
        # Nobody has the inpainting model: the backend with nothing loaded, not a switch.
        assert pool.choose(sdxl(INPAINT)) == c.url
        assert {s.url: s.model for s in pool.status()} == {
            a.url: (BASE,),
            b.url: (REFINER,),
            c.url: (),
        }


def test_affinity_holds_within_the_slack_and_gives_way_beyond_it(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url], affinity_slack=1) as pool:
        pool.note_submitted(a.url, sdxl(BASE))
        pool.note_submitted(b.url, sdxl(REFINER))
        make_busy(a, 1)
        assert pool.choose(sdxl(BASE)) == a.url  # one prompt deeper: worth the wait
        make_busy(a, 1)
        # Two deeper costs more than a switch: the shortest queue, nothing loaded there first.
        assert pool.choose(sdxl(BASE)) == c.url
        pool.note_submitted(c.url, sdxl(INPAINT))
        assert pool.choose(sdxl(BASE)) in (b.url, c.url)


def test_a_prompt_sent_ahead_waits_for_room_where_its_model_is_rather_than_switch(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url], affinity_slack=1) as pool:
        pool.note_submitted(a.url, sdxl(BASE))
        pool.note_submitted(b.url, sdxl(REFINER))
        pool.note_submitted(c.url, sdxl(REFINER))
        make_busy(a, 2)
        make_busy(b, 1)
        make_busy(c, 1)
        # a holds the model and is within the slack: that is where the prompt goes.
        assert pool.choose(sdxl(BASE)) == a.url
        # Ahead of time it may only go where there is room: not now, rather than to b or c,
        # which have room but would load another checkpoint first.
        with pytest.raises(PoolFull):
            pool.choose(sdxl(BASE), max_queue=1)
        assert pool.choose(sdxl(REFINER), max_queue=1) in (b.url, c.url)


def test_a_slack_of_zero_only_breaks_ties(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url], affinity_slack=0) as pool:
        pool.note_submitted(a.url, sdxl(BASE))
        assert pool.choose(sdxl(BASE)) == a.url
        make_busy(a, 1)
        assert pool.choose(sdxl(BASE)) in (b.url, c.url)


def test_without_affinity_the_shortest_queue_wins(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url], affinity=False) as pool:
        pool.note_submitted(a.url, sdxl(BASE))
        make_busy(a, 1)
        make_busy(b, 2)
        assert {pool.choose(sdxl(BASE)) for _ in range(5)} == {c.url}
        make_idle(a)
        make_idle(b)
        assert {pool.choose(sdxl(BASE)) for _ in range(40)} == {a.url, b.url, c.url}


def test_a_graph_without_models_ignores_affinity(a_b_c):
    a, b, c = a_b_c
    with BackendPool([a.url, b.url, c.url]) as pool:
        pool.note_submitted(a.url, sdxl(BASE))
        make_busy(a, 1)
        assert pool.choose() in (b.url, c.url)


def test_a_recent_queue_reading_is_reused_and_counts_the_submissions(a_b_c):
    a, b, _ = a_b_c
    clock = FakeClock(time.time())
    state = MemoryState()
    web = BackendPool([a.url, b.url], state=state, clock=clock)
    worker = BackendPool([a.url, b.url], state=state, clock=clock, queue_ttl=2.0)
    with web, worker:
        assert {s.queue_remaining for s in web.status()} == {0}
        web.note_submitted(a.url, sdxl(BASE))
        web.note_submitted(a.url, sdxl(BASE))
        # Within queue_ttl the worker trusts the reading, submissions counted in: a has 2.
        assert worker.choose(sdxl(BASE)) == b.url
        clock.now += 2.0
        # Read afresh: nothing was really queued there, and a has the model.
        assert worker.choose(sdxl(BASE)) == a.url


def test_pools_sharing_redis_know_what_each_backend_last_got(a_b_c, redis_url):
    a, b, c = a_b_c
    prefix = "test:affinity:"
    conn = redis_lib.from_url(redis_url)
    for key in conn.scan_iter(match=f"{prefix}*"):
        conn.delete(key)
    web = BackendPool([a.url, b.url, c.url], state=RedisState(conn, prefix=prefix))
    worker = BackendPool([a.url, b.url, c.url], state=RedisState(conn, prefix=prefix))
    with web, worker:
        web.note_submitted(c.url, sdxl(REFINER))
        assert worker.choose(sdxl(REFINER)) == c.url
        worker.note_submitted(a.url, sdxl(BASE))
        assert web.choose(sdxl(BASE)) == a.url
    for key in conn.scan_iter(match=f"{prefix}*"):
        conn.delete(key)
    conn.close()
