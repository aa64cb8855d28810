"""Run the pipeline for real and break it on purpose while it works.

What one run does:

1. a private working directory with its own SQLite database (or, when DATABASE_URL names
   PostgreSQL, a database created for the run and dropped afterwards), MEDIA_ROOT and
   VAR_DIR; `migrate`, `load_workflows` and an operator account;
2. its own embedded Redis on a fixed port, two simulators (with exec logs and websocket /
   HTTP faults), several SimpleWorker `rqworker` processes, `reconcile --every 1`, the
   campaign scheduler and the audit sealer;
3. submits generations of the model-free `color_swatch` workflow: most as campaigns
   (`campaigns.services`, their cells held until `schedule_campaigns` releases them), the
   rest as single briefs (`briefs.services.submit_brief`); regenerates a share once they
   await review (`review.services.regenerate`); pauses a campaign a third of the way in
   and resumes it later (chaos/load.py);
4. meanwhile SIGKILLs random workers (and restarts them, as a supervisor would), crashes
   and restarts simulators (queue and history lost) and restarts Redis once (data lost),
   at points spread over the run's progress;
5. waits until every generation is reviewable or terminal (or a time limit), stops
   everything, and reports one JSON line on stdout (and a breakdown of failures on stderr).

Django is set up in this process only after the environment points at the private
services, so nothing here touches the developer's database or Redis.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from chaos import checks
from chaos.config import Config, log
from chaos.load import Load
from chaos.processes import Child, Database, _manage


@dataclass
class Faults:
    worker_kills: int = 0
    sim_restarts: int = 0
    redis_restarts: int = 0
    worker_exits: int = 0  # workers that stopped by themselves (restarted too)
    log: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the run


class Harness:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.faults = Faults()
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.logdir = self.workdir / "logs"
        self.logdir.mkdir()
        self.db = Database(self.workdir)
        self.redis = None
        self.redis_port: int | None = None
        self.sims: list = []
        self.workers: list[Child] = []
        self.reconciler: Child | None = None
        self.sealer: Child | None = None
        self.env: dict = {}
        self.load: Load | None = None
        self.scheduler: Child | None = None
        self.exec_logs: list[Path] = []

    # ---- setup

    def prepare_environment(self) -> None:
        from reviewapp.lib.devredis import free_port

        cfg = self.cfg
        self.redis_port = free_port()
        sim_ports = [free_port() for _ in range(2)]
        self.env = {
            **os.environ,
            "DATABASE_URL": self.db.url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "COMFYUI_URL": ",".join(f"http://127.0.0.1:{p}" for p in sim_ports),
            "MEDIA_ROOT": str(self.workdir / "media"),
            "VAR_DIR": str(self.workdir / "var"),
            "HEARTBEAT_INTERVAL_S": str(cfg.heartbeat_interval_s),
            "WORKER_STALE_S": str(cfg.worker_stale_s),
            "RECONCILE_GRACE_S": str(cfg.reconcile_grace_s),
            "CAMPAIGN_RELEASE_WINDOW": str(cfg.release_window),
            "COMFYUI_TIMEOUT": os.environ.get("COMFYUI_TIMEOUT", "10"),
            "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
            "DJANGO_DEBUG": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            "PYTHONUNBUFFERED": "1",
        }
        (self.workdir / "var").mkdir()
        # This process uses the same services (submit_brief enqueues on commit).
        os.environ.update(self.env)
        self.sim_ports = sim_ports

    def setup_django(self) -> None:
        import django

        django.setup()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command

        from reviewapp.accounts import roles
        from reviewapp.catalog.models import Workflow

        quiet = io.StringIO()  # stdout carries the JSON line only
        call_command("migrate", interactive=False, verbosity=0, stdout=quiet)
        call_command("load_workflows", verbosity=0, stdout=quiet)
        workflow = Workflow.objects.get(slug="color_swatch")
        workflow.queue_timeout_s = self.cfg.queue_timeout_s
        workflow.run_timeout_s = self.cfg.run_timeout_s
        workflow.save()
        operator = User.objects.create_user("chaos-operator", password=uuid.uuid4().hex)
        operator.groups.set([Group.objects.get_or_create(name=roles.OPERATOR)[0]])
        # Regenerating an image that awaits review is its decision: a reviewer's.
        reviewer = User.objects.create_user("chaos-reviewer", password=uuid.uuid4().hex)
        reviewer.groups.set([Group.objects.get_or_create(name=roles.REVIEWER)[0]])
        self.load = Load(self.cfg, self.rng, operator, reviewer)

    def start_redis(self) -> None:
        from reviewapp.lib.devredis import EmbeddedRedis

        # A new object each time: stop() removes the old one's directory.
        self.redis = EmbeddedRedis(port=self.redis_port).start()

    def start_sims(self) -> None:
        from comfybridge.sim.process import SimProcess

        cfg = self.cfg
        for i, port in enumerate(self.sim_ports):
            exec_log = self.workdir / f"exec-{i}.log"
            self.exec_logs.append(exec_log)
            args = [
                "--exec-log", str(exec_log),
                "--ws-drop-rate", str(cfg.ws_drop_rate),
                "--http-error-rate", str(cfg.http_error_rate),
                "--jitter", str(cfg.jitter),
                "--ms-per-megapixel", str(cfg.ms_per_megapixel),
                "--seed", str(cfg.seed * 100 + i),
            ]  # fmt: skip
            sim = SimProcess(
                port=port, step_ms=cfg.step_ms, args=args, data_dir=self.workdir / f"sim-{i}"
            )
            self.sims.append(sim.start())

    def start_workers(self) -> None:
        argv = _manage(
            "rqworker", "default", "--with-scheduler", "--worker-class", "rq.worker.SimpleWorker"
        )
        for i in range(self.cfg.workers):
            self.workers.append(Child(f"worker-{i}", argv, self.env, self.logdir).start())
        every = str(self.cfg.reconcile_every)
        self.reconciler = Child(
            "reconciler", _manage("reconcile", "--every", every), self.env, self.logdir
        ).start()
        # The audit sealer runs beside them, as in production; the trail must verify at
        # the end whatever died meanwhile.
        # Campaign cells wait as held until the scheduler releases them.
        self.scheduler = Child(
            "scheduler", _manage("schedule_campaigns", "--every", "0.25"), self.env, self.logdir
        ).start()
        self.sealer = Child(
            "sealer", _manage("seal_audit", "--every", "0.5"), self.env, self.logdir
        ).start()

    # ---- faults

    def schedule(self) -> list[tuple[float, str]]:
        """(progress, fault) pairs: kills spread over 3%..90% of settled generations, sim
        crashes over 15%..80% (alternating simulators), the Redis restart at 45%, a campaign
        paused at 20% (resumed at 50%, see drive)."""
        cfg = self.cfg
        plan = []
        kills = cfg.kills()
        for i in range(kills):
            plan.append((0.03 + 0.87 * i / max(1, kills - 1), "worker"))
        for i in range(cfg.sim_restarts):
            plan.append((0.15 + 0.65 * i / max(1, cfg.sim_restarts - 1), "sim"))
        for i in range(cfg.redis_restarts):
            plan.append((0.45 + 0.3 * i / max(1, cfg.redis_restarts - 1), "redis"))
        if cfg.campaign_cells():
            plan.append((cfg.pause_at[0], "pause"))
        plan.sort()
        return plan

    def inject(self, fault: str) -> None:
        if fault == "worker":
            self.supervise()  # a worker that just stopped by itself is not killed again
            worker = self.rng.choice(self.workers)
            worker.kill()
            self.faults.worker_kills += 1
            self.faults.log.append(f"SIGKILL {worker.name}")
            log(self.cfg, f"SIGKILL {worker.name}; restarting it")
            time.sleep(0.2)
            worker.start()
        elif fault == "sim":
            index = self.faults.sim_restarts % len(self.sims)
            sim = self.sims[index]
            sim.kill()
            self.faults.sim_restarts += 1
            log(self.cfg, f"simulator {index} killed; down 1 s")
            time.sleep(1.0)
            sim.start()
            self.faults.log.append(f"sim {index} restart")
        elif fault == "pause":
            self.note(self.load.pause_one())
        elif fault == "redis":
            self.redis.stop()
            self.faults.redis_restarts += 1
            log(self.cfg, "redis stopped (data lost); down 1 s")
            time.sleep(1.0)
            self.start_redis()
            self.faults.log.append("redis restart")

    def supervise(self) -> None:
        """Restart a worker, the reconciler or the sealer that stopped by itself."""
        for child in [*self.workers, self.reconciler, self.scheduler, self.sealer]:
            if child is not None and not child.alive():
                self.faults.worker_exits += 1
                code = child.proc.returncode if child.proc else None
                self.faults.log.append(f"{child.name} exited with {code}; restarted")
                log(self.cfg, f"{child.name} exited by itself ({code}); restarting")
                child.start()

    # ---- the loop

    def drive(self) -> bool:
        """Submit, regenerate and inject faults until everything settles. True when it
        did before the time limit."""
        cfg, load = self.cfg, self.load
        plan = self.schedule()
        expected = cfg.generations + load.regenerate_target
        start = time.monotonic()
        last_report = 0.0
        while True:
            elapsed = time.monotonic() - start
            if elapsed > cfg.time_limit:
                log(cfg, "time limit reached")
                return False
            if load.submitted < cfg.generations:
                load.submit_some(25)
            self.supervise()
            counts = checks.counts()
            total = sum(counts.values())
            settled = sum(counts.get(s, 0) for s in checks.SETTLED)
            if load.submitted >= cfg.generations:
                load.regenerate_some()
            progress = settled / expected
            if load.paused and not load.resumed:
                # Resumed at its point of the run, or once nothing else is left to run
                # (the paused campaign's held cells would otherwise wait for ever).
                active = sum(counts.get(s, 0) for s in checks.ACTIVE)
                if progress >= cfg.pause_at[1] or (
                    not active and load.submitted >= cfg.generations
                ):
                    self.note(load.resume_paused())
            if plan and progress >= plan[0][0]:
                self.inject(plan.pop(0)[1])
                continue
            if elapsed - last_report > 5:
                last_report = elapsed
                log(cfg, f"{elapsed:.0f}s settled {settled}/{total} {counts}")
            if load.finished() and settled == total:
                if not plan:
                    return True
                # Everything settled before the plan finished (a tiny run): inject the
                # rest now so every fault is exercised; the run goes on if it adds work.
                self.inject(plan.pop(0)[1])
                continue
            time.sleep(0.25)

    def note(self, text: str) -> None:
        self.faults.log.append(text)
        log(self.cfg, text)

    # ---- teardown

    def shutdown(self) -> None:
        # Reconciler and workers first, while Redis and the simulators still answer.
        children = [
            c
            for c in [self.sealer, self.scheduler, self.reconciler, *self.workers]
            if c is not None
        ]
        for child in children:
            if child.alive():
                child.proc.terminate()
        for child in children:
            child.stop(timeout=10)
        for sim in self.sims:
            try:
                sim.stop()
            except Exception as exc:
                print(f"chaos: stopping a simulator: {exc}", file=sys.stderr)
        if self.redis is not None:
            self.redis.stop()


def run(cfg: Config) -> int:
    """One chaos run; prints the JSON line. Returns the exit status."""
    harness = Harness(cfg)
    started = time.monotonic()
    ok = False
    result: dict | None = None
    previous = signal.getsignal(signal.SIGTERM)

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        harness.prepare_environment()
        harness.db.create()
        harness.setup_django()
        harness.start_redis()
        harness.start_sims()
        harness.start_workers()
        log(cfg, f"workdir {harness.workdir}; {cfg.generations} generations")
        settled_in_time = harness.drive()
        wall = time.monotonic() - started
        m = checks.measure(harness.exec_logs)
        load = harness.load
        counts = m["counts"]
        result = {
            "generations": m["total"],
            "awaiting_review": counts.get("awaiting_review", 0),
            "failed": counts.get("failed", 0),
            # Regenerating an image that awaits review is its decision: rejected.
            "rejected": counts.get("rejected", 0),
            "lost": m["lost"],
            "stuck": m["stuck"],
            "duplicate_assets": m["duplicate_assets"],
            "duplicate_executions": m["duplicate_executions"],
            "faults": {
                "worker_kills": harness.faults.worker_kills,
                "sim_restarts": harness.faults.sim_restarts,
                "redis_restarts": harness.faults.redis_restarts,
                "ws_drop_rate": cfg.ws_drop_rate,
                "http_error_rate": cfg.http_error_rate,
            },
            "wall_s": round(wall, 1),
            "submitted": load.submitted,
            "single_briefs": load.singles,
            "campaigns": len(load.campaigns),
            "campaign_cells": sum(c.cell_count for c in load.campaigns),
            "campaigns_paused_and_resumed": sorted(set(load.paused) & set(load.resumed)),
            "held_when_paused": load.held_when_paused,
            "held_left": counts.get("held", 0),
            "regenerated": load.regenerated,
            "executions": m["executions"],
            "duplicate_executions_same_process": m["duplicate_executions_same_process"],
            "reviewable_without_assets": m["reviewable_without_assets"],
            "worker_exits": harness.faults.worker_exits,
            "submit_errors": sum(load.submit_errors.values()),
            "settled_in_time": settled_in_time,
            "audit_intact": m["audit_intact"],
            "audit_sealed": m["audit_sealed"],
        }
        if m["lost"]:
            print("chaos: generations that did not settle:", file=sys.stderr)
            for line in checks.explain_unsettled():
                print(line, file=sys.stderr)
        breakdown = checks.failure_breakdown()
        print(f"chaos: {result['failed']} failed generation(s)", file=sys.stderr)
        for message, n in breakdown:  # Counter.most_common(): (message, count)
            print(f"  {n:5d}  {message}", file=sys.stderr)
        if load.submit_errors:
            print("chaos: a submission raised (the operator would have seen an error):",
                  file=sys.stderr)  # fmt: skip
            for message, n in load.submit_errors.most_common():
                print(f"  {n:5d}  {message}", file=sys.stderr)
        if m["doubled"]:
            print("chaos: prompts executed more than once:", file=sys.stderr)
            for line in checks.explain_duplicates(m["doubled"]):
                print(line, file=sys.stderr)
        ok = (
            m["lost"] == 0
            and (not load.paused or set(load.paused) <= set(load.resumed))
            and m["stuck"] == 0
            and m["duplicate_assets"] == 0
            and m["reviewable_without_assets"] == 0
            and m["audit_intact"]
        )
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping everything", file=sys.stderr)
    finally:
        try:
            harness.shutdown()
        finally:
            try:
                harness.db.drop()
            except Exception as exc:
                print(f"chaos: could not drop {harness.db.pg_name}: {exc}", file=sys.stderr)
            if ok and not cfg.keep:
                shutil.rmtree(harness.workdir, ignore_errors=True)
            else:
                print(f"chaos: logs and data kept in {harness.workdir}", file=sys.stderr)
            signal.signal(signal.SIGTERM, previous)
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0 if ok else 1
