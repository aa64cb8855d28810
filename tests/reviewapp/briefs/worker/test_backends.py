"""reviewapp.briefs.worker.backends: one BackendPool per configured pool and process, built
from settings, its state shared through Redis."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from comfybridge.errors import ComfyUnavailable
from comfybridge.pool import NoBackendReady
from reviewapp.briefs.worker import backends
from reviewapp.lib.pools import UnknownPool

ROOT = Path(__file__).resolve().parents[4]
BASE_REFINER = json.loads((ROOT / "workflows" / "sdxl_base_refiner.api.json").read_text())


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_each_pool_is_built_once_and_again_when_the_settings_change(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (sim_server.url,)}
    first = backends.pool("default")
    assert backends.pool("default") is first
    assert first.name == "default"
    settings.COMFYUI_POOLS = {"default": (dead_url(), sim_server.url)}
    assert backends.pool("default") is not first


def test_an_unknown_pool_is_named(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (sim_server.url,)}
    with pytest.raises(UnknownPool, match="gpu"):
        backends.pool("gpu")


def test_it_chooses_a_ready_backend_over_a_dead_one(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (dead_url(), sim_server.url)}
    assert backends.choose("default", BASE_REFINER) == sim_server.url


def test_with_none_ready_it_says_why_instead_of_guessing(settings):
    dead = dead_url()
    settings.COMFYUI_POOLS = {"cpu": (dead,)}
    with pytest.raises(NoBackendReady) as caught:
        backends.choose("cpu", BASE_REFINER)
    assert caught.value.summary().startswith("the only backend in pool cpu is down")


def test_a_failure_one_process_reports_is_seen_by_every_pool_object(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (sim_server.url,)}
    assert backends.report_failure(sim_server.url, ComfyUnavailable("connection reset"))
    # Another process builds its own pool object; the backoff lives in Redis.
    backends._pools.clear()
    with pytest.raises(NoBackendReady, match="connection reset"):
        backends.choose("default", BASE_REFINER)
    backends.report_success(sim_server.url)
    assert backends.choose("default", BASE_REFINER) == sim_server.url


def test_client_for_carries_url_credentials_but_the_backend_name_does_not(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (sim_server.url.replace("http://", "http://ann:pw@"),)}
    backend = backends.choose("default", BASE_REFINER)
    assert backend == sim_server.url
    assert backends.pool_of_backend(backend) == "default"
    with backends.client_for(backend) as client:
        assert client.headers["Authorization"].startswith("Basic ")
        assert client.timeout == settings.COMFYUI_TIMEOUT
    with backends.client_for("http://127.0.0.1:9") as stray:
        assert stray.base_url == "http://127.0.0.1:9"


def test_the_warmup_workflow_setting_reaches_every_pool(settings, sim_server, tmp_path):
    graph = json.loads((ROOT / "workflows" / "color_swatch.api.json").read_text())
    path = tmp_path / "warmup.json"
    path.write_text(json.dumps(graph))
    settings.COMFYUI_POOLS = {"default": (sim_server.url,), "cpu": (dead_url(),)}
    settings.COMFYUI_WARMUP_WORKFLOW = str(path)
    for name in ("default", "cpu"):
        built = backends.pool(name)
        assert built.warmup_graph == graph
        assert str(uuid.UUID(built.warmup_id)) == built.warmup_id


def test_the_affinity_setting_turns_model_affinity_on_and_off(settings, sim_server):
    # Two names of one simulator: their queues are always equal, so only affinity decides.
    other = sim_server.url.replace("127.0.0.1", "localhost")
    settings.COMFYUI_POOLS = {"default": (sim_server.url, other)}
    backends.note_submitted("default", other, BASE_REFINER)
    assert backends.pool("default").affinity is True
    assert {backends.choose("default", BASE_REFINER) for _ in range(20)} == {other}
    settings.COMFYUI_AFFINITY = False
    assert backends.pool("default").affinity is False
    # Today's shortest-queue choice: ties go either way, whatever was loaded where.
    picks = {backends.choose("default", BASE_REFINER) for _ in range(40)}
    assert picks == {sim_server.url, other}
