"""python -m chaos [--generations N] [--workers N] [--worker-kills N] [--sim-restarts N] ..."""

from __future__ import annotations

import argparse
import sys

from chaos.harness import Config, run


def parse(argv: list[str]) -> Config:
    d = Config()
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    p.add_argument("--generations", type=int, default=d.generations, help="briefs to submit")
    p.add_argument("--workers", type=int, default=d.workers, help="rqworker processes")
    p.add_argument(
        "--worker-kills",
        type=int,
        default=None,
        help="SIGKILLs of a random worker (default: max(20, generations/50))",
    )
    p.add_argument("--sim-restarts", type=int, default=d.sim_restarts)
    p.add_argument("--redis-restarts", type=int, default=d.redis_restarts)
    p.add_argument(
        "--regenerate-share",
        type=float,
        default=d.regenerate_share,
        help="share of briefs regenerated once they await review",
    )
    p.add_argument(
        "--campaign-share",
        type=float,
        default=d.campaign_share,
        help="share of the generations submitted as campaigns (the rest as single briefs)",
    )
    p.add_argument(
        "--campaign-size", type=int, default=None, help="cells per campaign (default: a tenth)"
    )
    p.add_argument("--ws-drop-rate", type=float, default=d.ws_drop_rate)
    p.add_argument("--http-error-rate", type=float, default=d.http_error_rate)
    p.add_argument("--step-ms", type=float, default=d.step_ms)
    p.add_argument("--jitter", type=float, default=d.jitter)
    p.add_argument("--ms-per-megapixel", type=float, default=d.ms_per_megapixel)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--time-limit",
        type=float,
        default=d.time_limit,
        help="seconds to wait for every generation to settle",
    )
    p.add_argument(
        "--queue-timeout",
        type=int,
        default=d.queue_timeout_s,
        help="the workflow's queue deadline for this run (s)",
    )
    p.add_argument(
        "--run-timeout",
        type=int,
        default=d.run_timeout_s,
        help="the workflow's run deadline for this run (s)",
    )
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    a = p.parse_args(argv)  # fmt: skip
    return Config(
        generations=a.generations,
        workers=a.workers,
        worker_kills=a.worker_kills,
        sim_restarts=a.sim_restarts,
        redis_restarts=a.redis_restarts,
        regenerate_share=a.regenerate_share,
        campaign_share=a.campaign_share,
        campaign_size=a.campaign_size,
        ws_drop_rate=a.ws_drop_rate,
        http_error_rate=a.http_error_rate,
        step_ms=a.step_ms,
        jitter=a.jitter,
        ms_per_megapixel=a.ms_per_megapixel,
        seed=a.seed,
        time_limit=a.time_limit,
        queue_timeout_s=a.queue_timeout,
        run_timeout_s=a.run_timeout,
        keep=a.keep,
        verbose=a.verbose,
    )


if __name__ == "__main__":
    sys.exit(run(parse(sys.argv[1:])))
