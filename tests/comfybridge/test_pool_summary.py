"""NoBackendReady.summary(): one sentence for a web page, while ``reasons`` keep the detail."""

from __future__ import annotations

import pytest

from comfybridge.pool import BackendPool, BackendStatus, NoBackendReady
from comfybridge.sim.process import SimProcess
from tests.comfybridge.pool_helpers import BASE, BASE_REFINER, REFINER, dead_url, sdxl, tiny


def refusal(pool: BackendPool, graph: dict | None = None) -> NoBackendReady:
    with pytest.raises(NoBackendReady) as exc:
        pool.choose(graph)
    return exc.value


def test_every_backend_lacking_the_same_checkpoint_is_one_sentence():
    base_only = ["--checkpoints", BASE]
    with (
        SimProcess(args=base_only) as one,
        SimProcess(args=base_only) as two,
        BackendPool([one.url, two.url], name="sdxl") as pool,
    ):
        exc = refusal(pool, BASE_REFINER)
    assert exc.summary() == f"no backend in pool sdxl has checkpoint '{REFINER}'"
    assert not exc.retryable
    assert str(exc).startswith("no ComfyUI backend in pool sdxl is ready: ")
    assert f"(node 10, CheckpointLoaderSimple.ckpt_name) is not on {one.url}" in str(exc)


def test_several_things_missing_everywhere_are_all_named():
    graph = {**sdxl(REFINER), "30": {"class_type": "NoSuchNode", "inputs": {}}}
    with SimProcess(args=["--checkpoints", BASE]) as sim, BackendPool([sim.url]) as pool:
        exc = refusal(pool, graph)
    assert exc.summary() == (
        f"no backend in the pool has checkpoint '{REFINER}', nor node class 'NoSuchNode'"
    )


def test_backends_lacking_different_things_are_named_each():
    with (
        SimProcess(args=["--checkpoints", BASE]) as base_only,
        SimProcess(args=["--checkpoints", REFINER]) as refiner_only,
        BackendPool([base_only.url, refiner_only.url], name="sdxl") as pool,
    ):
        exc = refusal(pool, BASE_REFINER)
    assert exc.summary() == (
        f"no backend in pool sdxl can run this workflow ({base_only.url} lacks checkpoint "
        f"'{REFINER}'; {refiner_only.url} lacks checkpoint '{BASE}')"
    )


def test_all_backends_down_say_so_in_a_few_words():
    one, two = dead_url(), dead_url()
    with BackendPool([one, two], name="cpu") as pool:
        exc = refusal(pool)
        # Asked again within the backoff: the same words, from what the pool remembers.
        assert refusal(pool).summary() == exc.summary()
    assert exc.summary() == (
        f"all 2 backends in pool cpu are down ({one}: connection refused; "
        f"{two}: connection refused)"
    )
    assert exc.retryable


def test_a_lone_backend_refusing_credentials():
    with SimProcess(args=["--auth", "secret"]) as sim, BackendPool([sim.url], name="gpu") as pool:
        exc = refusal(pool)
    assert exc.summary() == (
        f"the only backend in pool gpu is down ({sim.url}: HTTP 401 Unauthorized)"
    )


def test_a_mixed_picture_names_each_backend():
    dead = dead_url()
    with (
        SimProcess(args=["--checkpoints", BASE]) as base_only,
        BackendPool([dead, base_only.url], name="sdxl") as pool,
    ):
        exc = refusal(pool, BASE_REFINER)
    assert exc.summary() == (
        f"no backend in pool sdxl is ready ({dead} is down (connection refused); "
        f"{base_only.url} lacks checkpoint '{REFINER}')"
    )


def test_backends_still_warming_up_ask_for_patience():
    with (
        SimProcess(args=["--step-ms", "5"]) as sim,
        BackendPool([sim.url], name="sdxl", warmup_graph=tiny()) as pool,
    ):
        exc = refusal(pool)
        assert pool.choose(wait=10) == sim.url
    assert exc.summary() == "no backend in pool sdxl is warmed up yet; try again in a moment"


def test_a_warm_up_needing_a_missing_model_says_so():
    with (
        SimProcess(args=["--checkpoints", BASE]) as sim,
        BackendPool([sim.url], name="sdxl", warmup_graph=sdxl(REFINER)) as pool,
    ):
        exc = refusal(pool)
    assert exc.summary() == (
        f"no backend in pool sdxl has checkpoint '{REFINER}' (for the warm-up workflow)"
    )


def test_long_errors_are_cut_short():
    status = BackendStatus("http://a", "down", "down (x)", error="the proxy said: " + "z" * 200)
    sentence = NoBackendReady([status]).summary()
    assert sentence.startswith("the only backend in the pool is down (http://a: the proxy said")
    assert sentence.endswith("...)") and len(sentence) < 140
