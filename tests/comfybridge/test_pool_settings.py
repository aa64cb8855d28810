"""reviewapp.briefs.comfy: one pool per process, built from settings, behind the old functions."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from comfybridge.errors import ComfyUnavailable
from reviewapp.briefs import comfy

ROOT = Path(__file__).resolve().parents[2]
BASE_REFINER = json.loads((ROOT / "workflows" / "sdxl_base_refiner.api.json").read_text())


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_the_pool_is_built_once_and_again_when_the_settings_change(settings, sim_server):
    settings.COMFYUI_URLS = [sim_server.url]
    first = comfy.pool()
    assert comfy.pool() is first
    settings.COMFYUI_URLS = [dead_url(), sim_server.url]
    assert comfy.pool() is not first


def test_it_chooses_a_ready_backend_over_a_dead_one(settings, sim_server):
    settings.COMFYUI_URLS = [dead_url(), sim_server.url]
    assert comfy.choose_backend() == sim_server.url
    assert comfy.choose_backend(BASE_REFINER) == sim_server.url


def test_with_none_ready_it_still_names_one_so_the_run_fails_the_usual_way(settings, caplog):
    dead = dead_url()
    settings.COMFYUI_URLS = [dead]
    assert comfy.choose_backend() == dead
    assert "no ComfyUI backend is ready" in caplog.text


def test_failures_reported_by_a_run_make_the_pool_back_off(settings, sim_server, caplog):
    settings.COMFYUI_URLS = [sim_server.url]
    assert comfy.report_failure(sim_server.url, ComfyUnavailable("connection reset"))
    assert comfy.choose_backend() == sim_server.url  # the only one: tried anyway
    assert "connection reset); next try in" in caplog.text
    caplog.clear()
    comfy.report_success(sim_server.url)
    assert comfy.choose_backend() == sim_server.url
    assert "no ComfyUI backend is ready" not in caplog.text


def test_client_for_carries_url_credentials_but_the_backend_name_does_not(settings, sim_server):
    settings.COMFYUI_URLS = [sim_server.url.replace("http://", "http://ann:pw@")]
    backend = comfy.choose_backend()
    assert backend == sim_server.url
    assert comfy.backend_urls() == [sim_server.url]
    with comfy.client_for(backend) as client:
        assert client.headers["Authorization"].startswith("Basic ")
        assert client.timeout == settings.COMFYUI_TIMEOUT
    with comfy.client_for("http://127.0.0.1:9") as stray:
        assert stray.base_url == "http://127.0.0.1:9"
