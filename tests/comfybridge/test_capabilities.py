"""Knowing a backend: health from /system_stats, and what it can run from /object_info."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from comfybridge.capabilities import BackendIncapable, Capabilities
from comfybridge.client import ComfyClient
from comfybridge.errors import ComfyUnavailable
from comfybridge.sim.process import SimProcess

ROOT = Path(__file__).resolve().parents[2]
BASE_REFINER = json.loads((ROOT / "workflows" / "sdxl_base_refiner.api.json").read_text())
SDXL = (
    "sd_xl_base_1.0.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "sd_xl_inpaint_0.1.safetensors",
)


@pytest.fixture(scope="module")
def sim():
    with SimProcess() as s:
        yield s


@pytest.fixture(scope="module")
def base_only():
    """A backend that has the SDXL base checkpoint but not the refiner."""
    with SimProcess(args=["--checkpoints", "sd_xl_base_1.0.safetensors"]) as s:
        yield s


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_health_reports_version_devices_memory_and_queue(sim):
    with ComfyClient(sim.url) as client:
        health = client.health()
    assert health.ok and health.url == sim.url
    assert health.comfyui_version == "0.3.64"
    assert [d.name for d in health.devices] == ["cpu"]
    assert health.ram_free and health.ram_total >= health.ram_free
    assert health.vram_free == health.devices[0].vram_free
    assert health.queue_remaining == 0


def test_health_of_an_unreachable_backend_raises_comfy_unavailable():
    with ComfyClient(dead_url(), timeout=2) as client, pytest.raises(ComfyUnavailable):
        client.health()


def test_capabilities_list_classes_and_the_checkpoints(sim):
    with ComfyClient(sim.url) as client:
        caps = client.capabilities()
    assert caps.has_class("CheckpointLoaderSimple") and caps.has_class("SaveImage")
    assert caps.checkpoints == sorted(SDXL)
    assert caps.missing_for(BASE_REFINER) == []
    assert "node classes; checkpoints: sd_xl_base_1.0.safetensors" in caps.summary()


def test_a_missing_checkpoint_is_named_with_node_and_input(base_only):
    with ComfyClient(base_only.url) as client, pytest.raises(BackendIncapable) as exc:
        client.check_can_run(BASE_REFINER)
    assert exc.value.problems == [
        f"checkpoint 'sd_xl_refiner_1.0.safetensors' (node 10, "
        f"CheckpointLoaderSimple.ckpt_name) is not on {base_only.url}"
    ]
    assert not exc.value.retryable


def test_a_missing_node_class_is_named(sim):
    graph = {**BASE_REFINER, "20": {"class_type": "UltimateSDUpscale", "inputs": {}}}
    with ComfyClient(sim.url) as client, pytest.raises(BackendIncapable) as exc:
        client.check_can_run(graph)
    assert str(exc.value) == f"node class 'UltimateSDUpscale' (node 20) is not on {sim.url}"


def test_capabilities_are_cached_for_their_ttl(sim):
    with ComfyClient(sim.url) as client:
        assert client.capabilities() is client.capabilities()
    with ComfyClient(sim.url, capabilities_ttl=0) as client:
        assert client.capabilities() is not client.capabilities()


def test_a_cached_miss_is_checked_again_before_refusing(sim, monkeypatch):
    with ComfyClient(sim.url) as client:
        stale = Capabilities({"SaveImage": {"input": {}}}, url=sim.url)
        client._capabilities = (0.0, stale)  # fetched long ago, before the classes were installed
        client.check_can_run(BASE_REFINER)
        assert client.capabilities() is not stale


def test_links_and_wrapped_values_are_understood():
    info = {
        "CheckpointLoaderSimple": {
            "input": {"required": {"ckpt_name": [["a.safetensors"], {}]}},
            "output": ["MODEL"],
        },
        "LoraLoader": {
            "input": {"required": {"lora_name": ["COMBO", {"options": ["x.safetensors"]}]}},
            "output": ["MODEL"],
        },
    }
    caps = Capabilities(info)
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ["9", 0]}},
        "2": {"class_type": "LoraLoader", "inputs": {"lora_name": {"__value__": "y.safetensors"}}},
    }
    assert caps.missing_for(graph) == [
        "LoRA 'y.safetensors' (node 2, LoraLoader.lora_name) is not on this backend"
    ]
    assert caps.models() == {"LoRA": ["x.safetensors"], "checkpoint": ["a.safetensors"]}
