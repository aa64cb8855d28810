"""Processes the benchmark starts: simulators and RQ workers, and reading their CPU/RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from comfybridge.sim.process import SimProcess

from .env import ROOT

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the ")" field 3 (state) is index 0: utime is field 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_sim(tmp: Path, name: str, *, ms_per_megapixel: float = 0, step_ms: float = 0):
    timing = tmp / f"{name}.timing.jsonl"
    sim = SimProcess(
        step_ms=step_ms,
        data_dir=tmp / f"{name}-data",
        args=["--ms-per-megapixel", str(ms_per_megapixel), "--timing-log", str(timing)],
    ).start()
    sim.timing_log = timing
    return sim


def read_timing(sim) -> list[dict]:
    path = sim.timing_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Workers:
    """``manage.py rqworker default --worker-class rq.worker.SimpleWorker`` processes."""

    def __init__(self, count: int, comfyui_urls: list[str], log_dir: Path):
        self.count = count
        self.env = {**os.environ, "COMFYUI_URL": ",".join(comfyui_urls), "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self) -> Workers:
        for i in range(self.count):
            path = self.log_dir / f"worker-{time.monotonic_ns()}-{i}.log"
            self.logs.append(path)
            log = open(path, "ab")  # noqa: SIM115
            cmd = [sys.executable, str(ROOT / "manage.py"), "rqworker", "default",
                   "--worker-class", "rq.worker.SimpleWorker"]  # fmt: skip
            self.procs.append(
                subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            )
            log.close()
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss(self) -> list[float]:
        return [rss_mb(pid) for pid in self.pids]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def deaths(self) -> str:
        dead = [p for p in self.procs if p.poll() is not None]
        out = []
        for p in dead:
            log = self.logs[self.procs.index(p)]
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            out.append(f"pid {p.pid} exit {p.returncode}: {tail}")
        return "\n".join(out)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
