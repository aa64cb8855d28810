"""Graphs and simulator chores shared by the BackendPool tests."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

from comfybridge.client import ComfyClient
from comfybridge.sim.process import SimProcess

ROOT = Path(__file__).resolve().parents[2]
BASE_REFINER = json.loads((ROOT / "workflows" / "sdxl_base_refiner.api.json").read_text())
BASE = "sd_xl_base_1.0.safetensors"
REFINER = "sd_xl_refiner_1.0.safetensors"
INPAINT = "sd_xl_inpaint_0.1.safetensors"
# Image nodes take this long per megapixel, so one blur of 1024x1024 keeps a backend busy.
SLOW = ["--ms-per-megapixel", "2000"]


def tiny(color: int | None = None) -> dict:
    color = uuid.uuid4().int % 0x1000000 if color is None else color
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }


def slow() -> dict:
    graph = tiny()
    graph["1"]["inputs"].update(width=1024, height=1024)
    graph["3"] = {
        "class_type": "ImageBlur",
        "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0},
    }
    graph["2"]["inputs"]["images"] = ["3", 0]
    return graph


def sdxl(checkpoint: str, seed: int = 1, size: int = 64) -> dict:
    """A one-step text-to-image graph on ``checkpoint``: what a loader switch is about."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": size, "height": size, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": 1,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }


def make_busy(sim: SimProcess, prompts: int) -> None:
    """Queue ``prompts`` more slow prompts (each keeps the backend busy for seconds)."""
    with ComfyClient(sim.url) as client:
        before = client.health().queue_remaining
        for _ in range(prompts):
            client.submit(slow(), follow=False)
        assert client.health().queue_remaining == before + prompts


def make_idle(sim: SimProcess) -> None:
    """Drop whatever the backend is running: a restart is quicker than waiting for a blur."""
    with ComfyClient(sim.url) as client:
        busy = client.health().queue_remaining
    if busy:
        sim.kill()
        sim.start()


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def exec_count(log: Path, prompt_id: str) -> int:
    if not log.exists():
        return 0
    return sum(json.loads(line)["prompt_id"] == prompt_id for line in log.read_text().splitlines())


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
