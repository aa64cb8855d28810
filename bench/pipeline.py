"""Generations through the whole pipeline: the brief form (web), services, RQ, real worker
processes, comfybridge against simulator processes, ingest and thumbnails.

A scenario: start the simulators and the workers with RQ suspended, submit the whole
backlog through the brief form, snapshot the workers' CPU, resume RQ and wait until every
generation has left the active states.
"""

from __future__ import annotations

import contextlib
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
    # Per generation, in the order they were created: pool, params, backend, prompt id and
    # the timeline (created_at, execution_started_at, execution_ended_at, finished_at).
    rows: list[dict] = field(default_factory=list)
    resumed_at: float = 0.0  # epoch s: when RQ was resumed (the backlog was complete)
    sim_pools: list[str] = field(default_factory=list)  # the pool of each simulator
    sim_urls: list[str] = field(default_factory=list)

    def of_pool(self, pool: str) -> list[dict]:
        return [row for row in self.rows if row["pool"] == pool]

    def timing_of(self, pool: str) -> list[list[dict]]:
        return [t for t, p in zip(self.timing, self.sim_pools, strict=True) if p == pool]


@dataclass
class PoolPlan:
    """One pool of a scenario: its backends (simulators started for it, or the URLs of
    backends that already run), how many workers listen to its queue, and the briefs
    submitted to it, in order, as (workflow slug, brief form data)."""

    name: str
    briefs: list[tuple[str, dict]]
    workers: int
    backends: int = 0
    sim: dict = field(default_factory=dict)  # keyword arguments of procs.start_sim
    urls: list[str] = field(default_factory=list)


def swatch_briefs(env: dict, n: int, size: int) -> list[tuple[str, dict]]:
    """n colour swatches, each of a colour no earlier scenario of this run used."""
    offset = env.setdefault("submitted", 0)
    env["submitted"] += n
    return [
        (
            SWATCH,
            {"color": f"#{color(offset + i):06x}", "width": size, "height": size, "blur_radius": 1},
        )
        for i in range(n)
    ]


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


def submit(client: Client, briefs: list[tuple[str, dict]]) -> float:
    """Submit the briefs through their forms; returns the CPU time of this (the web) thread."""
    cpu0 = time.thread_time()
    for slug, data in briefs:
        response = client.post(f"/workflows/{slug}/new/", data)
        if response.status_code != 302:
            raise RuntimeError(f"brief form of {slug} answered {response.status_code}")
    return time.thread_time() - cpu0


def _interleaved(plans: list[PoolPlan]) -> list[tuple[str, dict]]:
    # Pools' backlogs are submitted in turn, so none is complete long before another.
    out = []
    for i in range(max((len(p.briefs) for p in plans), default=0)):
        out.extend(p.briefs[i] for p in plans if i < len(p.briefs))
    return out


@contextlib.contextmanager
def pools_configured(pools: dict[str, tuple[str, ...]], workflow_pools: dict[str, str]):
    """This process configured like the workers: the scenario's pools and their RQ queues
    (services enqueue on the generation's pool), each workflow in the pool the scenario
    gives it (seeding, as an admin would move it); both put back afterwards."""
    from django.conf import settings
    from django.test import override_settings

    from reviewapp.catalog.models import Workflow
    from reviewapp.lib.pools import rq_queues

    timeout = next(iter(settings.RQ_QUEUES.values()))["DEFAULT_TIMEOUT"]
    before = dict(Workflow.objects.filter(slug__in=workflow_pools).values_list("slug", "pool"))
    urls = [url for group in pools.values() for url in group]
    queues = rq_queues(pools, settings.REDIS_URL, timeout)
    with override_settings(COMFYUI_POOLS=pools, COMFYUI_URLS=urls, RQ_QUEUES=queues):
        for slug, pool in workflow_pools.items():
            Workflow.objects.filter(slug=slug).update(pool=pool)
        try:
            yield
        finally:
            for slug, pool in before.items():
                Workflow.objects.filter(slug=slug).update(pool=pool)


def run(
    env: dict, operator, *, n: int, backends: int, workers: int, run_ms: float, size: int, **kwargs
) -> Result:
    """One pool "default" of ``backends`` simulators whose swatch run takes ``run_ms``."""
    briefs = [] if kwargs.get("backlog") else swatch_briefs(env, n, size)
    plan = PoolPlan(
        "default",
        briefs,
        workers,
        backends,
        sim={"ms_per_megapixel": ms_per_megapixel(run_ms, size)},
    )
    return run_pools(env, operator, [plan], **kwargs)


def run_pools(
    env: dict,
    operator,
    plans: list[PoolPlan],
    *,
    rss_warmup: int | None = None,
    timeout: float = 300.0,
    backlog=None,
    ids: list[int] | None = None,
    worker_env: dict | None = None,
) -> Result:
    """The scenario of ``plans``: every pool's backends and workers, the backlog submitted
    while RQ is suspended, then run to the end. ``backlog``/``ids``: rows seeded by the
    caller, who enqueues them in ``backlog()``, instead of briefs."""
    tmp = env["tmp"]
    env.setdefault("scenario", 0)
    env["scenario"] += 1
    tag = f"s{env['scenario']}"
    sims, sim_pools, pools = [], [], {}
    try:
        for plan in plans:
            started = [
                start_sim(tmp, f"{tag}-{plan.name}{b}", **plan.sim) for b in range(plan.backends)
            ]
            sims += started
            sim_pools += [plan.name] * len(started)
            pools[plan.name] = tuple(plan.urls) + tuple(s.url for s in started)
        slugs = {slug: plan.name for plan in plans for slug, _ in plan.briefs}
        with pools_configured(pools, slugs):
            result = _run(
                env,
                operator,
                plans,
                pools,
                sims,
                rss_warmup=rss_warmup,
                timeout=timeout,
                backlog=backlog,
                ids=ids,
                worker_env=worker_env,
            )
    finally:
        for s in sims:
            s.stop()
    result.timing = [read_timing(s) for s in sims]
    result.sim_pools = sim_pools
    result.sim_urls = [s.url for s in sims]
    return result


def _run(
    env, operator, plans, pools, sims, *, rss_warmup, timeout, backlog, ids, worker_env
) -> Result:
    from reviewapp.briefs.models import Generation

    conn = django_rq.get_connection(next(iter(pools)))
    conn.flushdb()
    suspend(conn)
    per_queue = {plan.name: plan.workers for plan in plans}
    pool = Workers(pools, per_queue, env["tmp"], extra_env=worker_env).start()
    try:
        _wait_suspended(conn, pool.count, pool)
        client = Client()
        client.force_login(operator)
        if backlog is None:
            last = Generation.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            briefs = _interleaved(plans)
            web_cpu, n = submit(client, briefs), len(briefs)
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
        resumed_at = time.time()
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
        rows = list(ours.order_by("created_at", "pk").values(*ROW_FIELDS))
    finally:
        pool.stop()
        resume(conn)
    finished = sorted(row["finished_at"].timestamp() for row in rows if row["finished_at"])
    return Result(
        n=n,
        done=done,
        failed=failed,
        wall_s=wall,
        web_cpu_s=web_cpu,
        worker_cpu_s=worker_cpu,
        timing=[],
        finished=finished,
        rss_warm=rss_warm,
        rss_end=rss_end,
        sim_cpu_s=sim_cpu,
        rows=rows,
        resumed_at=resumed_at,
    )


ROW_FIELDS = (
    "pk",
    "pool",
    "status",
    "params",
    "backend",
    "prompt_id",
    "created_at",
    "execution_started_at",
    "execution_ended_at",
    "finished_at",
)


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


def timing_from_rows(rows: list[dict]) -> list[dict]:
    """The rows' execution spans (ComfyUI's own history timestamps, which the worker stores
    on the row) as timing-log lines: for a backend that writes no timing log."""
    return [
        {
            "execution_start": round(row["execution_started_at"].timestamp() * 1000),
            "end": round(row["execution_ended_at"].timestamp() * 1000),
        }
        for row in rows
        if row["execution_started_at"] and row["execution_ended_at"]
    ]
