"""The benchmarks of pools, submit-ahead and affinity: P7, P11 and P3's two-pool row."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

from reviewapp.accounts import roles

from . import naive, pipeline
from .common import SMALL, percentile, say, scaled, swatch_graph
from .pipeline import PoolPlan, run_pools, steady_throughput, swatch_briefs, utilisation
from .procs import read_timing, start_sim

HERE = Path(__file__).resolve().parent


def _naive_colours(env: dict, n: int):
    # Colours no scenario of this run used: a real backend caches the last prompt's outputs.
    offset = env.setdefault("submitted", 0)
    env["submitted"] += n
    return lambda i: pipeline.color(offset + i)


def _round(u: dict, key: str, digits: int = 4) -> float:
    return round(u.get(key, 0.0), digits)


# ----------------------------------------------------------------------------- P7


def p7(env, users, results):
    """One backend, one worker: submit-ahead alone must keep the backend busy."""
    if env.get("backend"):
        return [_p7_backend(env, users, env["backend"])]
    lines = []
    n = scaled(env, 300)
    for run_ms, target in ((200, 0.97), (50, 0.95)):
        r = pipeline.run(
            env, users[roles.OPERATOR], n=n, backends=1, workers=1, run_ms=run_ms, size=SMALL
        )
        u = utilisation(r.timing[0])
        say(f"pipeline {run_ms} ms, 1 worker: {u} wall {r.wall_s:.1f}s")
        sim = start_sim(
            env["tmp"],
            f"p7-naive-{run_ms}",
            ms_per_megapixel=pipeline.ms_per_megapixel(run_ms, SMALL),
        )
        try:
            started = time.monotonic()
            naive.run_backlog(sim.url, swatch_graph(), n, SMALL, _naive_colours(env, n))
            naive_wall = time.monotonic() - started
        finally:
            sim.stop()
        nu = utilisation(read_timing(sim))
        say(f"naive {run_ms} ms: {nu} wall {naive_wall:.1f}s")
        met = u["utilisation"] >= max(target, nu["utilisation"]) and r.done == n
        lines.append(
            {
                "bench": "P7",
                "step_ms": run_ms,
                "generations": n,
                "backends": 1,
                "workers": 1,
                "pipeline_utilisation": _round(u, "utilisation"),
                "naive_utilisation": _round(nu, "utilisation"),
                "pipeline_jobs_per_s": round(n / r.wall_s, 2),
                "naive_jobs_per_s": round(n / naive_wall, 2),
                "mean_exec_ms": _round(u, "mean_exec_ms", 1),
                "idle_gap_p50_ms": u["idle_gap_p50_ms"],
                "idle_gap_max_ms": u["idle_gap_max_ms"],
                "naive_idle_gap_p50_ms": nu["idle_gap_p50_ms"],
                "succeeded": r.done,
                "failed": r.failed,
                "target": f">= {target} and >= naive",
                "met": met,
            }
        )
    return lines


def _p7_backend(env, users, url: str) -> dict:
    """P7 against a ComfyUI that runs already: the swatch graph at 64x64, whatever time
    the server takes; busy time from the execution spans the rows recorded."""
    from reviewapp.lib.pools import shown_url

    n = scaled(env, 300)
    warmup = 3
    # Whatever a cold server does first (loading nodes, allocating) is paid by neither side.
    naive.run_backlog(url, swatch_graph(), warmup, SMALL, _naive_colours(env, warmup))
    plan = PoolPlan("default", swatch_briefs(env, n, SMALL), workers=1, urls=[url])
    r = run_pools(env, users[roles.OPERATOR], [plan])
    u = utilisation(pipeline.timing_from_rows(r.rows))
    say(f"pipeline on {shown_url(url)}, 1 worker: {u} wall {r.wall_s:.1f}s")
    timings: list[dict] = []
    started = time.monotonic()
    naive.run_backlog(url, swatch_graph(), n, SMALL, _naive_colours(env, n), timings)
    naive_wall = time.monotonic() - started
    nu = utilisation(timings)
    say(f"naive on {shown_url(url)}: {nu} wall {naive_wall:.1f}s")
    # For information: what a second worker adds when one cannot keep up with short runs.
    two = run_pools(
        env,
        users[roles.OPERATOR],
        [PoolPlan("default", swatch_briefs(env, n, SMALL), workers=2, urls=[url])],
    )
    jobs, naive_jobs = n / r.wall_s, n / naive_wall
    return {
        "bench": "P7",
        "backend": shown_url(url),
        "generations": n,
        "workers": 1,
        "pipeline_jobs_per_s": round(jobs, 2),
        "naive_jobs_per_s": round(naive_jobs, 2),
        "ratio": round(jobs / naive_jobs, 3),
        "pipeline_2_workers_jobs_per_s": round(n / two.wall_s, 2),
        "pipeline_busy_s": round(u.get("mean_exec_ms", 0) * u["runs"] / 1000, 2),
        "pipeline_span_s": _round(u, "span_s", 2),
        "pipeline_utilisation": _round(u, "utilisation"),
        "naive_busy_s": round(nu.get("mean_exec_ms", 0) * nu["runs"] / 1000, 2),
        "naive_utilisation": _round(nu, "utilisation"),
        "mean_exec_ms": _round(u, "mean_exec_ms", 1),
        "warmup_runs": warmup,
        "succeeded": r.done,
        "failed": r.failed,
        "target": "pipeline jobs/s >= naive",
        "met": jobs >= naive_jobs and r.done == n,
    }


# ----------------------------------------------------------------------------- P3, two pools

SDXL = "sdxl_base_refiner"
# sdxl_base_refiner at 768x768 with 10 base steps samples 22 steps in all; the simulator's
# own rendering adds ~70 ms, so 19 ms a step makes a run of about 500 ms, like P3's swatch.
SDXL_STEP_MS = 19


def sdxl_briefs(env: dict, n: int) -> list[tuple[str, dict]]:
    offset = env.setdefault("submitted", 0)
    env["submitted"] += n
    return [
        (
            SDXL,
            {
                "prompt": f"a lighthouse, study {offset + i}",
                "negative": "",
                "seed": offset + i,
                "width": 768,
                "height": 768,
                "steps": 10,
                "cfg": 6.5,
            },
        )
        for i in range(n)
    ]


def p3_two_pools(env, users, results):
    """Two pools side by side, each against the same pool alone in the same run."""
    run_ms, per_backend, per_worker, backends = 500, scaled(env, 40), 4, 2
    n = per_backend * backends
    kinds = {
        "swatch": (
            pipeline.SWATCH,
            {"ms_per_megapixel": pipeline.ms_per_megapixel(run_ms, SMALL)},
            lambda: swatch_briefs(env, n, SMALL),
        ),
        "sdxl": (SDXL, {"step_ms": SDXL_STEP_MS}, lambda: sdxl_briefs(env, n)),
    }

    def plan(name: str) -> PoolPlan:
        _, sim, briefs = kinds[name]
        return PoolPlan(name, briefs(), per_worker * backends, backends, sim=sim)

    operator = users[roles.OPERATOR]
    alone = {name: run_pools(env, operator, [plan(name)]) for name in kinds}
    both = run_pools(env, operator, [plan(name) for name in kinds])
    pools, met = {}, True
    for name, (slug, _, _) in kinds.items():
        single = steady_throughput(alone[name].finished)
        finished = sorted(r["finished_at"].timestamp() for r in both.of_pool(name))
        beside = steady_throughput(finished)
        ratio = beside / single if single else 0.0
        met = met and 0.9 <= ratio <= 1.1 and alone[name].done == n
        pools[name] = {
            "workflow": slug,
            "backends": backends,
            "workers": per_worker * backends,
            "generations": n,
            "mean_exec_ms": round(
                utilisation([ln for t in both.timing_of(name) for ln in t])["mean_exec_ms"], 1
            ),
            "alone_per_s": round(single, 3),
            "beside_per_s": round(beside, 3),
            "ratio": round(ratio, 3),
            "succeeded": sum(1 for r in both.of_pool(name) if r["status"] == "awaiting_review"),
        }
        say(f"pool {name}: {pools[name]}")
    return [
        {
            "bench": "P3",
            "row": "two pools",
            "step_ms": run_ms,
            "pools": pools,
            "throughput": "per pool, generations finished per second between the 10th and 90th "
            "percentile, beside the other pool / alone",
            "target": "each ratio within 0.9-1.1",
            "met": met and both.done == both.n,
        }
    ]


# ----------------------------------------------------------------------------- P11

BENCH_WORKFLOW = "bench_checkpoint"
CHECKPOINTS = ("bench_a.safetensors", "bench_b.safetensors")  # the majority, the minority
MINORITY_SHARE = 0.3
MODEL_LOAD_MS = 2000
P11_STEP_MS = 20  # bench_checkpoint samples 10 steps: 200 ms runs


def load_bench_workflows() -> None:
    """bench/workflows + bench/params through the catalog's own loader, as load_workflows
    loads the shipped ones (idempotent)."""
    from reviewapp.catalog.services import load_directory

    for result in load_directory(HERE / "workflows", HERE / "params"):
        if result.outcome == "error":
            raise RuntimeError(f"{result.slug}: {result.problems}")


def checkpoint_mix(n: int, seed: int = 8) -> list[str]:
    """A seeded random mix: each generation the minority checkpoint with probability 0.3."""
    rng = random.Random(seed)
    return [CHECKPOINTS[1] if rng.random() < MINORITY_SHARE else CHECKPOINTS[0] for _ in range(n)]


def switches(r: pipeline.Result) -> list[int]:
    """Per backend, how often a run loaded another checkpoint than the run before it there
    (its first load not counted), from its timing log and the rows' prompt ids."""
    checkpoint_of = {str(row["prompt_id"]): row["params"]["checkpoint"] for row in r.rows}
    counts = []
    for lines in r.timing:
        runs = sorted(
            (ln for ln in lines if ln.get("execution_start")), key=lambda ln: ln["execution_start"]
        )
        seq = [checkpoint_of.get(ln["prompt_id"]) for ln in runs]
        counts.append(sum(1 for a, b in itertools.pairwise(seq) if a != b))
    return counts


def waits(r: pipeline.Result, checkpoint: str) -> tuple[list[float], list[float]]:
    """Queue waits (execution_started_at - created_at, s) of the generations of
    ``checkpoint``, and their fair shares: for the one at FIFO position k of the whole
    backlog (0-based, in creation order), the time it waited before RQ was resumed plus
    k / the run's overall throughput (generations / wall time from resume to the last)."""
    overall = r.n / r.wall_s
    actual, fair = [], []
    for k, row in enumerate(r.rows):
        if row["params"]["checkpoint"] != checkpoint or not row["execution_started_at"]:
            continue
        created = row["created_at"].timestamp()
        actual.append(row["execution_started_at"].timestamp() - created)
        fair.append(max(0.0, r.resumed_at - created) + k / overall)
    return actual, fair


def _p8_mode(r: pipeline.Result) -> dict:
    actual, fair = waits(r, CHECKPOINTS[1])
    major, _ = waits(r, CHECKPOINTS[0])
    return {
        "throughput_per_s": round(steady_throughput(r.finished), 3),
        "overall_per_s": round(r.n / r.wall_s, 3),
        "wall_s": round(r.wall_s, 1),
        "switches_per_backend": switches(r),
        "minority_wait_p95_s": round(percentile(actual, 0.95), 2),
        "minority_fair_p95_s": round(percentile(fair, 0.95), 2),
        "minority_wait_ratio": round(percentile(actual, 0.95) / percentile(fair, 0.95), 3),
        "majority_wait_p95_s": round(percentile(major, 0.95), 2),
        "backend_utilisation": [round(utilisation(t)["utilisation"], 3) for t in r.timing],
        "succeeded": r.done,
        "failed": r.failed,
    }


def p11(env, users, results):
    """Affinity against today's shortest-queue choice on a 70/30 mix of two checkpoints."""
    load_bench_workflows()
    n, backends = scaled(env, 200), 4
    mix = checkpoint_mix(n)
    sim = {
        "step_ms": P11_STEP_MS,
        "args": ["--checkpoints", ",".join(CHECKPOINTS), "--model-load-ms", str(MODEL_LOAD_MS)],
    }
    modes = {}
    for label, on in (("affinity", "1"), ("shortest_queue", "0")):
        offset = env.setdefault("submitted", 0)
        env["submitted"] += n
        briefs = [
            (BENCH_WORKFLOW, {"checkpoint": c, "seed": offset + i}) for i, c in enumerate(mix)
        ]
        plan = PoolPlan("default", briefs, workers=backends, backends=backends, sim=sim)
        r = run_pools(
            env, users[roles.OPERATOR], [plan], timeout=900, worker_env={"COMFYUI_AFFINITY": on}
        )
        modes[label] = _p8_mode(r)
        say(f"{label}: {modes[label]}")
    on, off = modes["affinity"], modes["shortest_queue"]
    ratio = on["throughput_per_s"] / off["throughput_per_s"] if off["throughput_per_s"] else 0.0
    return [
        {
            "bench": "P11",
            "generations": n,
            "backends": backends,
            "workers": backends,
            "run_ms": 200,
            "sim_step_ms": P11_STEP_MS,
            "model_load_ms": MODEL_LOAD_MS,
            "minority": {"checkpoint": CHECKPOINTS[1], "generations": mix.count(CHECKPOINTS[1])},
            "affinity": on,
            "shortest_queue": off,
            "throughput_ratio": round(ratio, 3),
            "target": "throughput ratio >= 2 and minority p95 wait <= 2 x fair p95 (affinity)",
            "met": ratio >= 2 and on["minority_wait_ratio"] <= 2 and on["succeeded"] == n,
        }
    ]
