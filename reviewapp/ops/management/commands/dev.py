"""`make run`: everything a developer needs, in one terminal, stopped by one Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from comfybridge.sim.process import stop_process
from reviewapp.lib.devredis import EmbeddedRedis, free_port
from reviewapp.lib.pools import backends_of, pool_names, shown_url


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Development only: migrate, load workflows, create demo accounts, then run Redis "
        "(embedded unless REDIS_URL is set), the ComfyUI simulator (unless COMFYUI_POOLS or "
        "COMFYUI_URL is set), an RQ worker per pool, the reconciler, the campaign scheduler, "
        "the audit sealer and the "
        "web server until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--sim-port", type=int, default=8188)
        parser.add_argument(
            "--sim-step-ms", type=int, default=40, help="simulated time per sampler step"
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("`dev` is for development only and refuses to run with DEBUG off")
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.restartable: dict[str, tuple[list, dict]] = {}
        self.redis = None
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.prepare()
            env = self.start_services(options)
            self.start_app(env, options)
            self.stdout.write(self.style.SUCCESS(
                f"\nServing http://127.0.0.1:{options['port']}/  (Ctrl-C stops everything)\n"
            ))  # fmt: skip
            self.supervise()
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            self.stop_all()

    def prepare(self):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_workflows")
        call_command("create_demo_users")

    def start_services(self, options) -> dict:
        env = dict(os.environ)
        if not env.get("REDIS_URL"):
            self.redis = EmbeddedRedis().start()
            env["REDIS_URL"] = self.redis.url
            self.stdout.write(f"Redis: embedded at {self.redis.url}")
        else:
            self.stdout.write(f"Redis: {env['REDIS_URL']}")
        if not env.get("COMFYUI_URL", "").strip() and not env.get("COMFYUI_POOLS", "").strip():
            # Then settings hold the one pool "default"; the children reach it at the
            # simulator's port.
            port = options["sim_port"] if port_is_free(options["sim_port"]) else free_port()
            sim_dir = settings.VAR_DIR / "sim"
            self.spawn("simulator", [
                sys.executable, "-m", "comfybridge.sim", "--host", "127.0.0.1",
                "--port", str(port), "--step-ms", str(options["sim_step_ms"]),
                "--data-dir", str(sim_dir),
            ], env)  # fmt: skip
            env["COMFYUI_URL"] = f"http://127.0.0.1:{port}"
            self.wait_for_port(port, "simulator")
            self.stdout.write(f"ComfyUI: simulator at {env['COMFYUI_URL']}")
        else:
            for pool in pool_names():
                urls = ", ".join(shown_url(url) for url in backends_of(pool)) or "no backend"
                self.stdout.write(f"ComfyUI pool {pool}: {urls}")
        return env

    def start_app(self, env, options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # SimpleWorker: no fork per job (a fork costs more than a short job, and the
        # backend pool's state lives on in the process).
        for pool in pool_names():
            # One worker per pool: its queue has the pool's name.
            worker = [*manage, "rqworker", pool, "--with-scheduler"]
            worker += ["--worker-class", "rq.worker.SimpleWorker"]
            self.spawn(f"worker {pool}", worker, env, restart=True)
        self.spawn("reconciler", [*manage, "reconcile", "--every", "10"], env, restart=True)
        self.spawn("scheduler", [*manage, "schedule_campaigns"], env, restart=True)
        self.spawn("sealer", [*manage, "seal_audit", "--every", "2"], env, restart=True)
        self.spawn("web", [*manage, "runserver", f"127.0.0.1:{options['port']}"], env)

    def spawn(self, name, argv, env, *, restart=False):
        # Own session: Ctrl-C reaches only this supervisor, which then stops the children
        # in order (web first, Redis last) instead of all at once.
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children.append((name, proc))
        if restart:
            # Workers exit when Redis goes away under them; like a process supervisor,
            # start them again (the reconciler picks up whatever they were doing).
            self.restartable[name] = (argv, env)
        return proc

    def wait_for_port(self, port, name, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise CommandError(f"{name} did not listen on port {port} within {timeout} s")

    def supervise(self):
        while True:
            for index, (name, proc) in enumerate(self.children):
                if proc.poll() is None:
                    continue
                if name not in self.restartable:
                    raise CommandError(f"{name} exited with code {proc.returncode}; stopping")
                self.stdout.write(f"{name} exited with code {proc.returncode}; starting it again")
                time.sleep(2)
                argv, env = self.restartable[name]
                self.children[index] = (
                    name,
                    subprocess.Popen(argv, env=env, start_new_session=True),
                )
            time.sleep(0.5)

    def stop_all(self):
        # Newest first: the web server and the worker stop while Redis and the
        # simulator still answer, so a job in flight can finish or hand back cleanly.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, proc in reversed(self.children):
            if stop_process(proc, 15):
                self.stdout.write(f"{name} did not stop in 15 s; it was killed")
        if self.redis is not None:
            self.redis.stop()
