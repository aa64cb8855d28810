"""``python -m comfybridge warmup`` and the capability lines of ``health``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from comfybridge.cli import main
from comfybridge.sim.process import SimProcess

ROOT = Path(__file__).resolve().parents[2]
SWATCH = ROOT / "workflows" / "color_swatch.api.json"
BASE_REFINER = ROOT / "workflows" / "sdxl_base_refiner.api.json"


@pytest.fixture(scope="module")
def sim():
    with SimProcess() as s:
        yield s


def test_warmup_runs_the_workflow_once_and_reports_the_time(sim, capsys):
    args = ["warmup", sim.url, str(SWATCH), "--set", "color=#102030", "--set", "width=72"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert re.fullmatch(rf"warmed {sim.url} with color_swatch.api.json in \d+\.\d\ds\n", first)
    # Run again, the backend has it all: ComfyUI serves every node from its cache.
    assert main(args) == 0
    assert "nodes from cache" in capsys.readouterr().out


def test_warmup_with_parameters_checks_them(sim, capsys):
    assert main(["warmup", sim.url, str(SWATCH), "--set", "width=99999"]) == 2
    assert "width" in capsys.readouterr().err


def test_warmup_refuses_a_backend_without_the_models(capsys):
    with SimProcess(args=["--checkpoints", "sd_xl_base_1.0.safetensors"]) as base_only:
        assert main(["warmup", base_only.url, str(BASE_REFINER)]) == 1
    err = capsys.readouterr().err
    assert "BackendIncapable: checkpoint 'sd_xl_refiner_1.0.safetensors' (node 10," in err


def test_health_lists_classes_and_checkpoints(sim, capsys):
    assert main(["health", sim.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"ok: ComfyUI 0.3.64 at {sim.url}; devices: cpu; running 0")
    assert re.fullmatch(
        r"capabilities: \d+ node classes; checkpoints: sd_xl_base_1\.0\.safetensors, "
        r"sd_xl_inpaint_0\.1\.safetensors, sd_xl_refiner_1\.0\.safetensors",
        out[1],
    )


def test_health_sends_the_token(capsys, monkeypatch):
    with SimProcess(args=["--auth", "tok"]) as guarded:
        assert main(["health", guarded.url]) == 1
        assert "AuthRejected: GET /system_stats" in capsys.readouterr().err
        assert main(["health", guarded.url, "--token", "tok"]) == 0
        monkeypatch.setenv("COMFYUI_TOKEN", "tok")
        assert main(["health", guarded.url, "--header", "X-Trace: 1"]) == 0
