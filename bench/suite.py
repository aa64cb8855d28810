"""The benchmarks P1-P6. Each returns the JSON lines it reports."""

from __future__ import annotations

import statistics

from reviewapp.accounts import roles

from . import naive, pipeline
from .common import SMALL, say, scaled, swatch_graph
from .procs import start_sim

WORKERS_PER_BACKEND = 3


# ----------------------------------------------------------------------------- P1


def p1(env, users, results):
    lines = []
    n = scaled(env, 300)
    for run_ms, target in ((200, 0.99), (50, 0.95)):
        r = pipeline.run(env, users[roles.OPERATOR], n=n, backends=1,
                         workers=WORKERS_PER_BACKEND, run_ms=run_ms, size=SMALL)  # fmt: skip
        results[f"P1-{run_ms}"] = r
        u = pipeline.utilisation(r.timing[0])
        say(f"pipeline {run_ms} ms: {u} wall {r.wall_s:.1f}s")
        sim = start_sim(env["tmp"], f"naive-{run_ms}",
                        ms_per_megapixel=pipeline.ms_per_megapixel(run_ms, SMALL))  # fmt: skip
        try:
            naive.run_backlog(sim.url, swatch_graph(), n, SMALL, pipeline.color)
        finally:
            sim.stop()
        from .procs import read_timing

        nu = pipeline.utilisation(read_timing(sim))
        say(f"naive {run_ms} ms: {nu}")
        lines.append({
            "bench": "P1", "step_ms": run_ms, "generations": n, "backends": 1,
            "workers": WORKERS_PER_BACKEND,
            "pipeline_utilisation": round(u["utilisation"], 4),
            "naive_utilisation": round(nu["utilisation"], 4),
            "mean_exec_ms": round(u["mean_exec_ms"], 1),
            "idle_gap_p50_ms": u["idle_gap_p50_ms"], "idle_gap_max_ms": u["idle_gap_max_ms"],
            "naive_idle_gap_p50_ms": nu["idle_gap_p50_ms"],
            "succeeded": r.done, "failed": r.failed,
            "target": target, "met": u["utilisation"] >= target and r.done == n,
        })  # fmt: skip
    return lines


# ----------------------------------------------------------------------------- P2


def _cpu_ms(r) -> dict:
    return {
        "web_cpu_ms_per_gen": round(1000 * r.web_cpu_s / r.n, 2),
        "worker_cpu_ms_per_gen": round(1000 * r.worker_cpu_s / r.n, 2),
        "cpu_ms_per_gen": round(1000 * (r.web_cpu_s + r.worker_cpu_s) / r.n, 2),
        "sim_cpu_ms_per_gen": round(1000 * r.sim_cpu_s / r.n, 2),
    }


def p2(env, users, results):
    small = results["P1-50"]
    n = scaled(env, 100)
    big = pipeline.run(env, users[roles.OPERATOR], n=n, backends=1,
                       workers=WORKERS_PER_BACKEND, run_ms=0, size=1024)  # fmt: skip
    without = _cpu_ms(small)
    with_enc = _cpu_ms(big)
    say(f"without {without} with {with_enc}")
    return [{
        "bench": "P2",
        "without_encoding": {"image_px": SMALL, "generations": small.n, **without},
        "with_encoding": {"image_px": 1024, "generations": big.n, **with_enc},
        "cpu_ms_per_gen_200ms_run": _cpu_ms(results["P1-200"])["cpu_ms_per_gen"],
        "target_ms": 10, "met": without["cpu_ms_per_gen"] <= 10,
    }]  # fmt: skip


# ----------------------------------------------------------------------------- P3


def p3(env, users, results):
    # One more worker per backend than P1: with several backends each worker reads the
    # queue lengths before the others' prompts land, so the spread is uneven.
    run_ms, per_backend, per_worker = 500, scaled(env, 40), WORKERS_PER_BACKEND + 1
    runs = {}
    for backends in (1, 4):
        r = pipeline.run(env, users[roles.OPERATOR], n=per_backend * backends, backends=backends,
                         workers=per_worker * backends, run_ms=run_ms,
                         size=SMALL)  # fmt: skip
        tput = pipeline.steady_throughput(r.finished)
        utils = [round(pipeline.utilisation(t)["utilisation"], 3) for t in r.timing]
        runs[backends] = {"generations": r.n, "workers": per_worker * backends,
                          "throughput_per_s": round(tput, 3), "wall_s": round(r.wall_s, 1),
                          "backend_utilisation": utils, "succeeded": r.done}  # fmt: skip
        say(f"{backends} backends: {runs[backends]}")
    ratio = runs[4]["throughput_per_s"] / runs[1]["throughput_per_s"]
    return [{
        "bench": "P3", "step_ms": run_ms, "one_backend": runs[1], "four_backends": runs[4],
        "throughput": "generations finished per second between the 10th and 90th percentile",
        "ratio": round(ratio, 3), "target": 3.8, "met": ratio >= 3.8,
    }]  # fmt: skip


# ----------------------------------------------------------------------------- P5


def sample_png(size: int = 1024) -> bytes:
    """A photo-like 1024² PNG: the simulator's picture under sensor-like noise, saved the way
    ComfyUI's SaveImage saves (compress_level 4)."""
    import io

    from PIL import Image

    from comfybridge.sim.render import render

    base = render("a benchmark picture", 7, size, size).convert("RGB")
    noise = Image.effect_noise((size, size), 24).convert("RGB")
    img = Image.blend(base, noise, 0.25)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=4)
    return out.getvalue()


def p5(env, users, results):
    import time

    from django.conf import settings

    from reviewapp.lib import images

    data = sample_png()
    timings = {"inspect": [], "thumbnail": [], "total": []}
    for i in range(33):
        t0 = time.perf_counter()
        images.inspect(data, max_pixels=settings.IMAGE_MAX_PIXELS)
        t1 = time.perf_counter()
        images.thumbnail(data, settings.THUMBNAIL_SIZE, max_pixels=settings.IMAGE_MAX_PIXELS)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up
            timings["inspect"].append(t1 - t0)
            timings["thumbnail"].append(t2 - t1)
            timings["total"].append(t2 - t0)
    med = {k: round(1000 * statistics.median(v), 2) for k, v in timings.items()}
    return [{
        "bench": "P5", "png_bytes": len(data), "px": 1024, "runs": len(timings["total"]),
        "median_ms": med["total"], "verify_hash_median_ms": med["inspect"],
        "thumbnail_median_ms": med["thumbnail"],
        "p95_ms": round(1000 * sorted(timings["total"])[int(0.95 * len(timings["total"]))], 2),
        "target_ms": 40, "met": med["total"] <= 40,
    }]  # fmt: skip


# ----------------------------------------------------------------------------- P6


def p6(env, users, results):
    from reviewapp.briefs.worker.enqueue import enqueue_generation

    n = scaled(env, 5000)
    backends, workers = 2, 4
    warmup = max(5, n // 10)
    seeded = seed_swatch_generations(users[roles.OPERATOR], n)

    def enqueue_all():
        for pk in seeded:
            enqueue_generation(pk, "default")

    r = pipeline.run(env, users[roles.OPERATOR], n=0, backends=backends, workers=workers, run_ms=0,
                     size=SMALL, rss_warmup=warmup, timeout=500, backlog=enqueue_all,
                     ids=seeded)  # fmt: skip
    growth = [round(e - w, 1) for w, e in zip(r.rss_warm, r.rss_end, strict=True)]
    say(f"rss warm {r.rss_warm} end {r.rss_end} wall {r.wall_s:.1f}")
    return [{
        "bench": "P6", "generations": r.n, "backends": backends, "workers": workers, "step_ms": 0,
        "generations_per_worker": round(r.n / workers),
        "rss_after_warmup_mb": [round(x, 1) for x in r.rss_warm],
        "rss_end_mb": [round(x, 1) for x in r.rss_end], "warmup_generations": warmup,
        "rss_growth_mb": growth, "succeeded": r.done, "wall_s": round(r.wall_s, 1),
        "target_mb": 20, "met": max(growth) <= 20 and r.done == r.n,
    }]  # fmt: skip


def seed_swatch_generations(operator, n: int) -> list[int]:
    """Briefs and queued generations written with bulk_create (seeding, not measured);
    the workers then run them through the real job."""
    from datetime import timedelta

    from django.utils import timezone

    from reviewapp.briefs.models import Brief, Generation
    from reviewapp.catalog.models import WorkflowVersion

    version = WorkflowVersion.objects.get(
        workflow__slug="color_swatch", status=WorkflowVersion.Status.PUBLISHED
    )
    now = timezone.now()
    params = [
        {"color": pipeline.color(100_000 + i), "width": SMALL, "height": SMALL, "blur_radius": 1}
        for i in range(n)
    ]
    briefs = Brief.objects.bulk_create(
        [Brief(workflow_version=version, params=p, created_by=operator, created_at=now)
         for p in params], batch_size=1000,
    )  # fmt: skip
    gens = Generation.objects.bulk_create(
        [Generation(brief=b, params=b.params, created_by=operator, created_at=now,
                    queue_deadline=now + timedelta(hours=1)) for b in briefs],
        batch_size=1000,
    )  # fmt: skip
    return [g.pk for g in gens]


# ----------------------------------------------------------------------------- P4


def p4(env, users, results):
    from . import pages

    return pages.run(users)
