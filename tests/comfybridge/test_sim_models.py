"""Simulator flags for what a pool meets on real servers: ``--model-load-ms`` (a checkpoint
switch costs time, a cached loader none) and ``--require-uuid-prompt-ids`` (newer ComfyUI
refuses any other client-supplied prompt id)."""

from __future__ import annotations

import uuid

import pytest
import requests

from comfybridge.client import ComfyClient
from comfybridge.sim.process import SimProcess
from tests.comfybridge.pool_helpers import BASE, REFINER, sdxl, tiny

LOAD_MS = 400


@pytest.fixture(scope="module")
def loading_sim():
    with SimProcess(args=["--model-load-ms", str(LOAD_MS)]) as sim:
        yield sim


def span(client: ComfyClient, graph: dict) -> float:
    """Seconds between the history entry's execution_start and execution_success."""
    result = client.run(graph, timeout=30)
    times = dict((event, data["timestamp"]) for event, data in result.history["status"]["messages"])
    return (times["execution_success"] - times["execution_start"]) / 1000


def test_a_checkpoint_switch_costs_the_load_time_and_the_same_model_nothing(loading_sim):
    with ComfyClient(loading_sim.url) as client:
        assert span(client, sdxl(BASE, seed=1)) >= LOAD_MS / 1000  # nothing was loaded
        # Same checkpoint, new seed: the loader's output comes from the cache.
        assert span(client, sdxl(BASE, seed=2)) < LOAD_MS / 1000 / 2
        assert span(client, sdxl(REFINER, seed=3)) >= LOAD_MS / 1000
        assert span(client, sdxl(REFINER, seed=4)) < LOAD_MS / 1000 / 2
        assert span(client, sdxl(BASE, seed=5)) >= LOAD_MS / 1000


def test_a_loader_run_again_on_the_loaded_model_costs_nothing(loading_sim):
    with ComfyClient(loading_sim.url) as client:
        span(client, sdxl(REFINER, seed=10))
        # A prompt without the loader drops it from the cache, so the loader runs again next
        # time; the model it asks for is still the loaded one.
        span(client, tiny())
        result = client.run(sdxl(REFINER, seed=11), timeout=30)
        messages = dict(result.history["status"]["messages"])
        assert messages["execution_cached"]["nodes"] == []
        started = messages["execution_start"]["timestamp"]
        assert (messages["execution_success"]["timestamp"] - started) / 1000 < LOAD_MS / 1000 / 2


def test_without_the_flag_a_switch_is_free():
    with SimProcess() as sim, ComfyClient(sim.url) as client:
        assert span(client, sdxl(BASE)) < 0.2
        assert span(client, sdxl(REFINER)) < 0.2


@pytest.fixture(scope="module")
def strict_sim():
    with SimProcess(args=["--require-uuid-prompt-ids"]) as sim:
        yield sim


@pytest.mark.parametrize(
    "prompt_id",
    ["warmup-3f2a9c", str(uuid.uuid4()).upper(), uuid.uuid4().hex, f"{{{uuid.uuid4()}}}", 42],
)
def test_strict_ids_refuse_anything_but_a_canonical_uuid(strict_sim, prompt_id):
    reply = requests.post(
        f"{strict_sim.url}/prompt", json={"prompt": tiny(), "prompt_id": prompt_id}
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {
            "type": "invalid_prompt_id",
            "message": "prompt_id must be a valid UUID",
            "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
            "omit it to let the server generate one",
            "extra_info": {},
        },
        "node_errors": {},
    }


def test_strict_ids_take_a_canonical_uuid_or_mint_one(strict_sim):
    given = str(uuid.uuid4())
    reply = requests.post(f"{strict_sim.url}/prompt", json={"prompt": tiny(), "prompt_id": given})
    assert reply.status_code == 200 and reply.json()["prompt_id"] == given
    for body in ({"prompt": tiny()}, {"prompt": tiny(), "prompt_id": None}):
        minted = requests.post(f"{strict_sim.url}/prompt", json=body).json()["prompt_id"]
        assert str(uuid.UUID(minted)) == minted


def test_by_default_any_prompt_id_is_taken_as_comfyui_0_3_64_does():
    with SimProcess() as sim:
        reply = requests.post(f"{sim.url}/prompt", json={"prompt": tiny(), "prompt_id": "warm-1"})
        assert reply.status_code == 200 and reply.json()["prompt_id"] == "warm-1"


def test_a_checkpoint_file_put_in_the_models_folder_is_offered_like_comfyui_does():
    import requests

    from comfybridge.sim.process import SimProcess

    with SimProcess(args=("--checkpoints", "a.safetensors")) as sim:

        def offered():
            info = requests.get(f"{sim.url}/object_info/CheckpointLoaderSimple", timeout=5).json()
            listed = requests.get(f"{sim.url}/models/checkpoints", timeout=5).json()
            return info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0], listed

        assert offered() == (["a.safetensors"], ["a.safetensors"])
        folder = sim.data_dir / "models" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "b.safetensors").write_bytes(b"weights")
        (folder / "notes.txt").write_text("not a model")
        assert offered() == (["a.safetensors", "b.safetensors"], ["a.safetensors", "b.safetensors"])
