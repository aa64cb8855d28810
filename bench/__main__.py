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
    p.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P10", help="comma-separated ids")
    p.add_argument("--scale", type=float, default=1.0, help="multiply generation counts (trials)")
    a = p.parse_args(argv)
    only = {x.strip().upper() for x in a.only.split(",")}
    t0 = time.monotonic()
    env = bench_env.setup()
    env["scale"] = a.scale
    users = bench_env.users()
    log(f"database: {env['database']}, scratch: {env['tmp']}")
    from . import audit, suite

    results: dict = {}
    benches = {b: getattr(suite, b.lower()) for b in ("P5", "P1", "P2", "P3", "P6", "P4")}
    benches["P10"] = audit.p10
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
