"""Generations through the whole pipeline: the brief form (web), services, RQ, real worker
processes, comfybridge against simulator processes, ingest and thumbnails.

A scenario: start the simulators and the workers with RQ suspended, submit the whole
backlog through the brief form, snapshot the workers' CPU, resume RQ and wait until every
generation has left the active states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import django_rq
from django.test import Client
from rq import Worker
from rq.suspension import resume, suspend

from .procs import Workers, read_timing, start_sim

SWATCH = "color_swatch"


def color(i: int) -> int:
    # Distinct parameters per run: an identical graph would be served from the backend's cache.
    return (i * 2654435761 + 12345) % 0xFFFFFF


def ms_per_megapixel(run_ms: float, size: int) -> float:
    """color_swatch spends ms_per_megapixel on EmptyImage and again on ImageBlur."""
    return run_ms / (2 * size * size / 1e6) if run_ms else 0.0


@dataclass
class Result:
    n: int
    done: int
    failed: int
    wall_s: float
    web_cpu_s: float
    worker_cpu_s: float
    timing: list[list[dict]]  # per simulator, its timing-log lines
    finished: list[float]  # finished_at of each generation (epoch s)
    rss_warm: list[float] = field(default_factory=list)
    rss_end: list[float] = field(default_factory=list)
    sim_cpu_s: float = 0.0


def _wait_suspended(conn, count: int, workers: Workers, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not workers.alive():
            raise RuntimeError(f"a worker exited at start; see {workers.log_dir}")
        states = [w.get_state() for w in Worker.all(connection=conn)]
        if len(states) >= count and all(s == "suspended" for s in states):
            return
        time.sleep(0.2)
    raise RuntimeError("workers did not come up")


def submit(client: Client, n: int, size: int, offset: int) -> float:
    """Submit n briefs through the form; returns the CPU time of this (the web) thread."""
    url = f"/workflows/{SWATCH}/new/"
    cpu0 = time.thread_time()
    for i in range(n):
        data = {
            "color": f"#{color(offset + i):06x}",
            "width": size,
            "height": size,
            "blur_radius": 1,
        }
        response = client.post(url, data)
        if response.status_code != 302:
            raise RuntimeError(f"brief form answered {response.status_code}")
    return time.thread_time() - cpu0


def run(
    env: dict,
    operator,
    *,
    n: int,
    backends: int,
    workers: int,
    run_ms: float,
    size: int,
    rss_warmup: int | None = None,
    timeout: float = 300.0,
    backlog=None,
    ids: list[int] | None = None,
) -> Result:
    from reviewapp.briefs.models import Generation

    tmp = env["tmp"]
    env.setdefault("scenario", 0)
    env["scenario"] += 1
    tag = f"s{env['scenario']}"
    sims = [
        start_sim(tmp, f"{tag}-sim{b}", ms_per_megapixel=ms_per_megapixel(run_ms, size))
        for b in range(backends)
    ]
    conn = django_rq.get_connection("default")
    conn.flushdb()
    suspend(conn)
    pool = Workers(workers, [s.url for s in sims], tmp).start()
    try:
        _wait_suspended(conn, workers, pool)
        client = Client()
        client.force_login(operator)
        if backlog is None:
            last = Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            web_cpu = submit(client, n, size, offset=env.setdefault("submitted", 0))
            env["submitted"] += n
            ours = Generation.objects.filter(pk__gt=last)
        else:
            # Rows seeded by the caller; only the enqueueing is done here.
            backlog()
            web_cpu, n = 0.0, len(ids)
            ours = Generation.objects.filter(pk__gte=min(ids), pk__lte=max(ids))
        assert ours.count() == n, ours.count()
        cpu0 = pool.cpu()
        sim_cpu0 = sum(_sim_cpu(s) for s in sims)
        t0 = time.monotonic()
        resume(conn)
        rss_warm: list[float] = []
        deadline = t0 + timeout
        while True:
            left = ours.filter(status__in=Generation.ACTIVE).count()
            if rss_warmup is not None and not rss_warm and n - left >= rss_warmup:
                rss_warm = pool.rss()
            if left == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{left} of {n} generations still active after {timeout}s")
            if not pool.alive():
                raise RuntimeError(f"a worker died: {pool.deaths()}")
            time.sleep(0.1)
        wall = time.monotonic() - t0
        # The last job's RQ bookkeeping ends just after its row changes.
        time.sleep(0.3)
        worker_cpu = pool.cpu() - cpu0
        sim_cpu = sum(_sim_cpu(s) for s in sims) - sim_cpu0
        rss_end = pool.rss()
        done = ours.filter(status=Generation.Status.AWAITING_REVIEW).count()
        failed = ours.filter(status=Generation.Status.FAILED).count()
        finished = [
            t.timestamp()
            for t in ours.exclude(finished_at=None).values_list("finished_at", flat=True)
        ]
    finally:
        pool.stop()
        resume(conn)
        for s in sims:
            s.stop()
    return Result(
        n=n, done=done, failed=failed, wall_s=wall, web_cpu_s=web_cpu, worker_cpu_s=worker_cpu,
        timing=[read_timing(s) for s in sims], finished=sorted(finished),
        rss_warm=rss_warm, rss_end=rss_end, sim_cpu_s=sim_cpu,
    )  # fmt: skip


def _sim_cpu(sim) -> float:
    from .procs import cpu_seconds

    return cpu_seconds(sim.proc.pid)


def utilisation(lines: list[dict]) -> dict:
    """Σ execution time / (last finish - first start), from the simulator's history timestamps."""
    runs = [ln for ln in lines if ln.get("execution_start") and ln.get("end")]
    if not runs:
        return {"utilisation": 0.0, "runs": 0}
    busy = sum(r["end"] - r["execution_start"] for r in runs)
    span = max(r["end"] for r in runs) - min(r["execution_start"] for r in runs)
    gaps = sorted(
        b["execution_start"] - a["end"]
        for a, b in zip(
            sorted(runs, key=lambda r: r["execution_start"]),
            sorted(runs, key=lambda r: r["execution_start"])[1:],
            strict=False,
        )
    )
    return {
        "utilisation": busy / span if span else 0.0,
        "runs": len(runs),
        "mean_exec_ms": busy / len(runs),
        "idle_gap_p50_ms": gaps[len(gaps) // 2] if gaps else 0,
        "idle_gap_max_ms": gaps[-1] if gaps else 0,
        "span_s": span / 1000,
    }


def steady_throughput(finished: list[float], lo: float = 0.1, hi: float = 0.9) -> float:
    """Generations per second between the 10th and the 90th percentile of finishing times."""
    k = len(finished)
    a, b = int(k * lo), int(k * hi) - 1
    if b <= a or finished[b] == finished[a]:
        return 0.0
    return (b - a) / (finished[b] - finished[a])
