"""Processes the benchmark starts: simulators and RQ workers, and reading their CPU/RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
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


def start_sim(
    tmp: Path,
    name: str,
    *,
    ms_per_megapixel: float = 0,
    step_ms: float = 0,
    args: Sequence[str] = (),
):
    """A simulator writing its timing log next to its data; ``args`` are more of its flags."""
    timing = tmp / f"{name}.timing.jsonl"
    sim = SimProcess(
        step_ms=step_ms,
        data_dir=tmp / f"{name}-data",
        args=["--ms-per-megapixel", str(ms_per_megapixel), "--timing-log", str(timing), *args],
    ).start()
    sim.timing_log = timing
    return sim


def read_timing(sim) -> list[dict]:
    path = sim.timing_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pools_text(pools: Mapping[str, Sequence[str]]) -> str:
    """The COMFYUI_POOLS value of ``{name: [url, ...]}``."""
    return ";".join(f"{name}={','.join(urls)}" for name, urls in pools.items())


class Workers:
    """``manage.py rqworker QUEUE --worker-class rq.worker.SimpleWorker`` processes.

    ``pools`` is the whole configuration every worker gets (COMFYUI_POOLS), ``per_queue``
    how many workers listen to each pool's queue (one queue per process, as ``make run``
    starts them). ``extra_env`` adds settings (COMFYUI_AFFINITY, ...).
    """

    def __init__(
        self,
        pools: Mapping[str, Sequence[str]],
        per_queue: Mapping[str, int],
        log_dir: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.per_queue = dict(per_queue)
        self.count = sum(self.per_queue.values())
        # COMFYUI_URL would only be shadowed (and warned about) beside COMFYUI_POOLS.
        inherited = {k: v for k, v in os.environ.items() if k != "COMFYUI_URL"}
        self.env = {
            **inherited,
            "COMFYUI_POOLS": pools_text(pools),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self) -> Workers:
        for queue, count in self.per_queue.items():
            for i in range(count):
                path = self.log_dir / f"worker-{time.monotonic_ns()}-{queue}-{i}.log"
                self.logs.append(path)
                log = open(path, "ab")  # noqa: SIM115
                cmd = [sys.executable, str(ROOT / "manage.py"), "rqworker", queue]
                cmd += ["--worker-class", "rq.worker.SimpleWorker"]
                self.procs.append(
                    subprocess.Popen(
                        cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                    )
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
