"""``python -m bench``: one JSON line per benchmark on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import env as bench_env


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument(
        "--only", default="P1,P2,P3,P4,P5,P6,P7,P8,P9,P10,P11", help="comma-separated ids"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply generation counts (trials)")
    p.add_argument(
        "--backend",
        metavar="URL",
        help="run P7 against this ComfyUI (the model-free swatch graph) instead of a simulator",
    )
    a = p.parse_args(argv)
    only = {x.strip().upper() for x in a.only.split(",")}
    if a.backend and only != {"P7"}:
        p.error("--backend runs P7 only: add --only P7")
    t0 = time.monotonic()
    env = bench_env.setup()
    env["scale"] = a.scale
    env["backend"] = a.backend
    users = bench_env.users()
    log(f"database: {env['database']}, scratch: {env['tmp']}")
    from . import audit, campaigns, pools, suite

    results: dict = {}
    benches = {b: getattr(suite, b.lower()) for b in ("P5", "P1", "P2", "P3", "P6", "P4")}
    benches["P3"] = lambda *args: suite.p3(*args) + pools.p3_two_pools(*args)
    benches["P7"] = pools.p7
    benches["P8"] = campaigns.p8
    benches["P9"] = campaigns.p9
    benches["P10"] = audit.p10
    benches["P11"] = pools.p11
    for bench_id, bench in benches.items():
        if bench_id in only or (bench_id == "P1" and "P2" in only):
            log(f"{bench_id} ...")
            started = time.monotonic()
            lines = bench(env, users, results)
            for line in lines:
                if bench_id in only:
                    emit(line)
            log(f"{bench_id} took {time.monotonic() - started:.1f}s")
    log(f"total {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
