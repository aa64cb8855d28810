"""A chaos run's settings."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass
class Config:
    generations: int = 1000
    workers: int = 4
    worker_kills: int | None = None  # None: scaled to the run, at least 20
    sim_restarts: int = 3
    redis_restarts: int = 1
    regenerate_share: float = 0.05
    # Share of the generations submitted as campaigns (the rest as single briefs), and
    # cells per campaign (None: a tenth of the run, at least 20: more than the release
    # window, so a paused campaign has cells held back).
    campaign_share: float = 0.8
    campaign_size: int | None = None
    # Released campaign cells per pool at once (CAMPAIGN_RELEASE_WINDOW): two per worker.
    release_window: int = 8
    # Pause one campaign at this share of the run's progress, resume it at the second.
    pause_at: tuple[float, float] = (0.2, 0.5)
    ws_drop_rate: float = 0.05
    http_error_rate: float = 0.02
    step_ms: float = 5.0
    jitter: float = 0.5
    ms_per_megapixel: float = 1000.0
    seed: int = 1
    time_limit: float = 540.0
    # The workflow's deadlines for this run, so "stuck" (past a deadline, still active)
    # means something within the time limit.
    queue_timeout_s: int = 600
    run_timeout_s: int = 180
    heartbeat_interval_s: float = 1.0
    worker_stale_s: float = 5.0
    reconcile_grace_s: float = 2.0
    reconcile_every: float = 1.0
    keep: bool = False
    verbose: bool = False

    def campaign_cells(self) -> int:
        if self.campaign_share <= 0:
            return 0
        if self.campaign_size is not None:
            return self.campaign_size
        return max(20, self.generations // 10)

    def kills(self) -> int:
        if self.worker_kills is not None:
            return self.worker_kills
        return max(20, self.generations // 50)


def log(cfg: Config, message: str) -> None:
    if cfg.verbose:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
