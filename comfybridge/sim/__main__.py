"""``python -m comfybridge.sim``: run a ComfyUI-compatible server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from comfybridge.sim.config import CHECKPOINTS, SimConfig
from comfybridge.sim.server import run


def parse_args(argv: list[str] | None = None) -> tuple[SimConfig, bool]:
    p = argparse.ArgumentParser(prog="python -m comfybridge.sim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="holds input/, output/, temp/ (default: a fresh temporary directory)",
    )
    p.add_argument("--step-ms", type=float, default=0.0, help="time per sampler step")
    p.add_argument(
        "--ms-per-megapixel",
        type=float,
        default=0.0,
        help="extra time image nodes spend per megapixel processed",
    )
    p.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="random extra fraction of each step/work time (0.5 = up to +50%%)",
    )
    p.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        help="probability that a prompt fails with a runtime execution_error",
    )
    p.add_argument(
        "--http-error-rate",
        type=float,
        default=0.0,
        help="probability that an HTTP request gets a 500",
    )
    p.add_argument(
        "--ws-drop-rate",
        type=float,
        default=0.0,
        help="probability to drop each execution message for a socket",
    )
    p.add_argument(
        "--slow-accept-ms",
        type=float,
        default=0.0,
        help="delay of the POST /prompt reply, after the prompt is queued",
    )
    p.add_argument(
        "--crash-after",
        type=int,
        default=None,
        help="exit hard (os._exit) while the Nth prompt runs",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for the fault randomness")
    p.add_argument(
        "--exec-log",
        type=Path,
        default=None,
        help="append one JSON line per prompt execution start",
    )
    p.add_argument(
        "--timing-log",
        type=Path,
        default=None,
        help="append one JSON line per finished prompt: its history's start and end timestamps",
    )
    p.add_argument(
        "--auth",
        metavar="TOKEN",
        default=None,
        help="require 'Authorization: Bearer TOKEN' on every route and the /ws upgrade (else 401)",
    )
    p.add_argument(
        "--checkpoints",
        default=None,
        help="comma-separated checkpoint names to offer (default: the three SDXL ones)",
    )
    p.add_argument(
        "--model-load-ms",
        type=float,
        default=0.0,
        help="time a checkpoint loader takes to load another model than the loaded one",
    )
    p.add_argument(
        "--require-uuid-prompt-ids",
        action="store_true",
        help="answer 400 invalid_prompt_id to a prompt_id that is not a canonical UUID",
    )
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    return SimConfig(
        host=a.host,
        port=a.port,
        data_dir=a.data_dir,
        step_ms=a.step_ms,
        ms_per_megapixel=a.ms_per_megapixel,
        jitter=a.jitter,
        fail_rate=a.fail_rate,
        http_error_rate=a.http_error_rate,
        ws_drop_rate=a.ws_drop_rate,
        slow_accept_ms=a.slow_accept_ms,
        crash_after=a.crash_after,
        seed=a.seed,
        exec_log=a.exec_log,
        timing_log=a.timing_log,
        auth_token=a.auth or None,
        checkpoints=(
            CHECKPOINTS
            if a.checkpoints is None
            else tuple(n.strip() for n in a.checkpoints.split(",") if n.strip())
        ),
        model_load_ms=a.model_load_ms,
        require_uuid_prompt_ids=a.require_uuid_prompt_ids,
        argv=["comfybridge.sim", *(argv if argv is not None else sys.argv[1:])],
    ), a.verbose


def main(argv: list[str] | None = None) -> None:
    config, verbose = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    # SIGTERM should stop the server like Ctrl-C, so SimProcess.stop() exits cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run(config)


if __name__ == "__main__":
    main()
