"""Run the pipeline for real and break it on purpose while it works.

What one run does:

1. a private working directory with its own SQLite database (or, when DATABASE_URL names
   PostgreSQL, a database created for the run and dropped afterwards), MEDIA_ROOT and
   VAR_DIR; `migrate`, `load_workflows` and an operator account;
2. its own embedded Redis on a fixed port, two simulators (with exec logs and websocket /
   HTTP faults), several SimpleWorker `rqworker` processes and `reconcile --every 1`;
3. submits generations of the model-free `color_swatch` workflow through
   `briefs.services.submit_brief` and regenerates a share of them once they await review
   (`review.services.regenerate`);
4. meanwhile SIGKILLs random workers (and restarts them, as a supervisor would), crashes
   and restarts simulators (queue and history lost) and restarts Redis once (data lost),
   at points spread over the run's progress;
5. waits until every generation is reviewable or terminal (or a time limit), stops
   everything, and reports one JSON line on stdout (and a breakdown of failures on stderr).

Django is set up in this process only after the environment points at the private
services, so nothing here touches the developer's database or Redis.
"""

from __future__ import annotations

import collections
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from chaos.processes import Child, Database, _manage

SETTLED = ("awaiting_review", "approved", "rejected", "failed", "cancelled")
TERMINAL = ("approved", "rejected", "failed", "cancelled")
ACTIVE = ("queued", "submitting", "running")


@dataclass
class Config:
    generations: int = 1000
    workers: int = 4
    worker_kills: int | None = None  # None: scaled to the run, at least 20
    sim_restarts: int = 3
    redis_restarts: int = 1
    regenerate_share: float = 0.05
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

    def kills(self) -> int:
        if self.worker_kills is not None:
            return self.worker_kills
        return max(20, self.generations // 50)


@dataclass
class Faults:
    worker_kills: int = 0
    sim_restarts: int = 0
    redis_restarts: int = 0
    worker_exits: int = 0  # workers that stopped by themselves (restarted too)
    log: list[str] = field(default_factory=list)


def log(cfg: Config, message: str) -> None:
    if cfg.verbose:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
        self.submitted = 0
        self.regenerated = 0
        self.regenerate_target = round(cfg.generations * cfg.regenerate_share)
        self.exec_logs: list[Path] = []
        self.submit_errors: collections.Counter = collections.Counter()

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
        self.operator = User.objects.create_user("chaos-operator", password=uuid.uuid4().hex)
        self.operator.groups.set([Group.objects.get_or_create(name=roles.OPERATOR)[0]])
        # Regenerating an image that awaits review is its decision: a reviewer's.
        self.reviewer = User.objects.create_user("chaos-reviewer", password=uuid.uuid4().hex)
        self.reviewer.groups.set([Group.objects.get_or_create(name=roles.REVIEWER)[0]])

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
        self.sealer = Child(
            "sealer", _manage("seal_audit", "--every", "0.5"), self.env, self.logdir
        ).start()

    # ---- faults

    def schedule(self) -> list[tuple[float, str]]:
        """(progress, fault) pairs: kills spread over 3%..90% of settled generations, sim
        crashes over 15%..80% (alternating simulators), the Redis restart at 45%."""
        cfg = self.cfg
        plan = []
        kills = cfg.kills()
        for i in range(kills):
            plan.append((0.03 + 0.87 * i / max(1, kills - 1), "worker"))
        for i in range(cfg.sim_restarts):
            plan.append((0.15 + 0.65 * i / max(1, cfg.sim_restarts - 1), "sim"))
        for i in range(cfg.redis_restarts):
            plan.append((0.45 + 0.3 * i / max(1, cfg.redis_restarts - 1), "redis"))
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
        elif fault == "redis":
            self.redis.stop()
            self.faults.redis_restarts += 1
            log(self.cfg, "redis stopped (data lost); down 1 s")
            time.sleep(1.0)
            self.start_redis()
            self.faults.log.append("redis restart")

    def supervise(self) -> None:
        """Restart a worker, the reconciler or the sealer that stopped by itself."""
        for child in [*self.workers, self.reconciler, self.sealer]:
            if child is not None and not child.alive():
                self.faults.worker_exits += 1
                code = child.proc.returncode if child.proc else None
                self.faults.log.append(f"{child.name} exited with {code}; restarted")
                log(self.cfg, f"{child.name} exited by itself ({code}); restarting")
                child.start()

    # ---- load

    def submit_some(self, count: int) -> None:
        from django.db import DatabaseError

        from reviewapp.briefs import services
        from reviewapp.catalog.models import WorkflowVersion

        version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
        sizes = (64, 96, 128, 192, 256)
        for _ in range(min(count, self.cfg.generations - self.submitted)):
            params = {
                "color": self.rng.randrange(0, 1 << 24),
                "width": self.rng.choice(sizes),
                "height": self.rng.choice(sizes),
                "blur_radius": self.rng.randint(1, 3),
            }
            try:
                services.submit_brief(version, params, actor=self.operator)
            except DatabaseError as exc:
                # What the operator's request would have answered (a 500): nothing was
                # stored. Counted and reported; the operator submits again next round.
                self.submit_errors[_normalise(str(exc).splitlines()[0])] += 1
                log(self.cfg, f"submit_brief failed: {exc!r}")
                continue
            self.submitted += 1

    def regenerate_some(self) -> None:
        from reviewapp.briefs.models import Generation
        from reviewapp.review import services

        if self.regenerated >= self.regenerate_target:
            return
        candidates = list(
            Generation.objects.filter(
                status=Generation.Status.AWAITING_REVIEW, parent__isnull=True, children__isnull=True
            ).order_by("?")[: self.regenerate_target - self.regenerated]
        )
        for generation in candidates:
            if self.rng.random() < 0.5:
                continue
            services.regenerate(generation, actor=self.reviewer)
            self.regenerated += 1

    def counts(self) -> dict[str, int]:
        from django.db.models import Count

        from reviewapp.briefs.models import Generation

        rows = Generation.objects.values("status").annotate(n=Count("id")).order_by()
        return {row["status"]: row["n"] for row in rows}

    # ---- the loop

    def drive(self) -> bool:
        """Submit, regenerate and inject faults until everything settles. True when it
        did before the time limit."""
        cfg = self.cfg
        plan = self.schedule()
        expected = cfg.generations + self.regenerate_target
        start = time.monotonic()
        last_report = 0.0
        while True:
            elapsed = time.monotonic() - start
            if elapsed > cfg.time_limit:
                log(cfg, "time limit reached")
                return False
            if self.submitted < cfg.generations:
                self.submit_some(25)
            self.supervise()
            counts = self.counts()
            total = sum(counts.values())
            settled = sum(counts.get(s, 0) for s in SETTLED)
            if self.regenerated < self.regenerate_target and self.submitted >= cfg.generations:
                self.regenerate_some()
            progress = settled / expected
            if plan and progress >= plan[0][0]:
                self.inject(plan.pop(0)[1])
                continue
            if elapsed - last_report > 5:
                last_report = elapsed
                log(cfg, f"{elapsed:.0f}s settled {settled}/{total} {counts}")
            done = (
                self.submitted >= cfg.generations
                and self.regenerated >= self.regenerate_target
                and not plan
                and settled == total
            )
            if done:
                return True
            if (
                self.submitted >= cfg.generations
                and settled == total
                and plan
                and self.regenerated >= self.regenerate_target
            ):
                # Everything settled before the plan finished (a tiny run): inject the
                # rest now so every fault is exercised; the run goes on if it adds work.
                self.inject(plan.pop(0)[1])
                continue
            time.sleep(0.25)

    # ---- checks

    def measure(self) -> dict:
        from django.db.models import Count, Q
        from django.utils import timezone

        from reviewapp.briefs.models import Asset, Generation

        now = timezone.now()
        gens = Generation.objects.all()
        counts = self.counts()
        total = sum(counts.values())
        lost = gens.exclude(status__in=SETTLED).count()
        stuck = (
            gens.filter(status__in=ACTIVE)
            .filter(Q(status="queued", queue_deadline__lt=now) | Q(run_deadline__lt=now))
            .count()
        )
        dup_slots = sum(
            row["n"] - 1
            for row in Asset.objects.values("generation_id", "node_id", "index")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        dup_hashes = sum(
            row["n"] - 1
            for row in Asset.objects.values("generation_id", "sha256")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        reviewable = gens.filter(status__in=("awaiting_review", "approved", "rejected"))
        without_assets = reviewable.filter(assets__isnull=True).count()
        executions, dup_prompts, dup_same_process = self.executions()
        from reviewapp.audit.sealer import seal_all
        from reviewapp.audit.verify import verify

        seal_all()
        audit = verify()
        if not audit.intact:
            print(f"chaos: audit trail not intact: {audit.problems}", file=sys.stderr)
        return {
            "audit_intact": audit.intact,
            "audit_sealed": audit.sealed,
            "total": total,
            "counts": counts,
            "lost": lost,
            "stuck": stuck,
            "duplicate_assets": dup_slots + dup_hashes,
            "reviewable_without_assets": without_assets,
            "executions": executions,
            "duplicate_executions": dup_prompts,
            "duplicate_executions_same_process": dup_same_process,
        }

    def explain_unsettled(self) -> list[str]:
        """Row and RQ state of every generation that did not settle (while Redis is up)."""
        import django_rq

        from reviewapp.briefs.models import Generation
        from reviewapp.briefs.worker.enqueue import job_id_for

        queue = django_rq.get_queue("default")
        lines = []
        try:
            waiting = set(queue.job_ids)
            intermediate = set(queue.intermediate_queue.get_job_ids())
            started = set(queue.started_job_registry.get_job_ids())
            scheduled = set(queue.scheduled_job_registry.get_job_ids())
        except Exception as exc:
            return [f"  (Redis unreadable: {exc})"]
        for gen in Generation.objects.exclude(status__in=SETTLED).order_by("pk")[:20]:
            job_id = job_id_for(gen.pk)
            job = queue.fetch_job(job_id)
            status = job.get_status(refresh=False) if job is not None else "no job"
            where = [name for name, ids in (("queue", waiting), ("intermediate", intermediate),
                     ("started", started), ("scheduled", scheduled)) if job_id in ids]  # fmt: skip
            lines.append(
                f"  #{gen.pk} {gen.status} attempt {gen.attempt} updated {gen.updated_at:%X} "
                f"error {gen.error[:80]!r}; job {status} in {where or 'no list'}"
            )
        return lines

    def executions(self) -> tuple[int, int, int]:
        """(executions, prompt ids executed more than once, of those how many ran twice in
        the same simulator process, i.e. were not re-run after a crash)."""
        runs: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        for index, path in enumerate(self.exec_logs):
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    runs[entry["prompt_id"]].append((index, entry["pid"]))
        total = sum(len(v) for v in runs.values())
        doubled = {k: v for k, v in runs.items() if len(v) > 1}
        same_process = sum(1 for v in doubled.values() if len(set(v)) < len(v))
        self.doubled = doubled
        return total, len(doubled), same_process

    def failure_breakdown(self) -> list[tuple[int, str]]:
        from reviewapp.briefs.models import Generation

        groups: collections.Counter = collections.Counter()
        for error in Generation.objects.filter(status="failed").values_list("error", flat=True):
            groups[_normalise(error)] += 1
        return groups.most_common()

    def explain_duplicates(self) -> list[str]:
        """What the rows say about each prompt that ran twice (for the stderr report)."""
        from reviewapp.briefs.models import Generation

        lines = []
        for prompt_id, runs in sorted(self.doubled.items()):
            gen = Generation.objects.filter(prompt_id=prompt_id).first()
            where = ", ".join(f"sim{i}/pid{pid}" for i, pid in runs)
            state = f"#{gen.pk} {gen.status} attempt {gen.attempt}" if gen else "no generation"
            lines.append(f"  {prompt_id}: {where}; {state}")
        return lines

    # ---- teardown

    def shutdown(self) -> None:
        # Reconciler and workers first, while Redis and the simulators still answer.
        children = [c for c in [self.sealer, self.reconciler, *self.workers] if c is not None]
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


def _normalise(error: str) -> str:
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", error)
    text = re.sub(r"127\.0\.0\.1:\d+", "<sim>", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:200]


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
        m = harness.measure()
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
            "submitted": harness.submitted,
            "regenerated": harness.regenerated,
            "executions": m["executions"],
            "duplicate_executions_same_process": m["duplicate_executions_same_process"],
            "reviewable_without_assets": m["reviewable_without_assets"],
            "worker_exits": harness.faults.worker_exits,
            "submit_errors": sum(harness.submit_errors.values()),
            "settled_in_time": settled_in_time,
            "audit_intact": m["audit_intact"],
            "audit_sealed": m["audit_sealed"],
        }
        if m["lost"]:
            print("chaos: generations that did not settle:", file=sys.stderr)
            for line in harness.explain_unsettled():
                print(line, file=sys.stderr)
        breakdown = harness.failure_breakdown()
        print(f"chaos: {result['failed']} failed generation(s)", file=sys.stderr)
        for message, n in breakdown:  # Counter.most_common(): (message, count)
            print(f"  {n:5d}  {message}", file=sys.stderr)
        if harness.submit_errors:
            print("chaos: submit_brief raised (the operator would have seen an error):",
                  file=sys.stderr)  # fmt: skip
            for message, n in harness.submit_errors.most_common():
                print(f"  {n:5d}  {message}", file=sys.stderr)
        if harness.doubled:
            print("chaos: prompts executed more than once:", file=sys.stderr)
            for line in harness.explain_duplicates():
                print(line, file=sys.stderr)
        ok = (
            m["lost"] == 0
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
