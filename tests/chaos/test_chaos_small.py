"""The chaos suite, small: the whole pipeline in subprocesses (its own Redis, two
simulators, four workers, the reconciler, the campaign scheduler) while workers are
SIGKILLed, a simulator crashes, Redis restarts and a campaign is paused and resumed.
Nothing may be lost, stuck or stored twice."""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_chaos_run_loses_nothing_and_doubles_nothing():
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "chaos",
            "--generations", "50",
            "--worker-kills", "3",
            "--sim-restarts", "1",
            "--redis-restarts", "1",
            "--regenerate-share", "0.1",
            "--time-limit", "60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=85,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    result = json.loads(lines[-1])
    explain = f"{result}\n{proc.stderr[-4000:]}"

    assert result["generations"] >= 50, explain
    assert result["lost"] == 0, explain
    assert result["stuck"] == 0, explain
    assert result["duplicate_assets"] == 0, explain
    assert result["reviewable_without_assets"] == 0, explain
    assert result["audit_intact"] and result["audit_sealed"] > result["generations"], explain
    settled = result["awaiting_review"] + result["failed"] + result["rejected"]
    assert settled == result["generations"], explain
    # Each regenerated image was awaiting review, so the regenerate was its decision.
    assert result["rejected"] == result["regenerated"], explain
    # Most of the run came as campaigns; one was paused with cells held back, resumed,
    # and none of its cells was left held.
    assert result["campaigns"] == 2 and result["campaign_cells"] == 40, explain
    assert result["single_briefs"] == 10, explain
    assert result["campaigns_paused_and_resumed"], explain
    assert result["held_when_paused"] > 0 and result["held_left"] == 0, explain
    faults = result["faults"]
    assert faults["worker_kills"] == 3, explain
    assert faults["sim_restarts"] == 1, explain
    assert faults["redis_restarts"] == 1, explain
    assert faults["ws_drop_rate"] > 0 and faults["http_error_rate"] > 0, explain
    assert proc.returncode == 0, explain
    assert elapsed < 90, f"took {elapsed:.0f} s"
