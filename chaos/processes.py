"""The chaos run's processes and database: supervised children, and a database of the
run's own (SQLite in its working directory, or a PostgreSQL database created and dropped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from comfybridge.sim.process import stop_process

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- processes


class Child:
    """A supervised subprocess in its own session (a Ctrl-C reaches only the harness,
    which then stops its children in order)."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.logdir = logdir
        self.proc: subprocess.Popen | None = None
        self.generation = 0

    def start(self) -> Child:
        self.generation += 1
        out = open(self.logdir / f"{self.name}.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout)


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


# --------------------------------------------------------------------------- database


class Database:
    """SQLite in the working directory, or a PostgreSQL database of the run's own."""

    def __init__(self, workdir: Path):
        self.base_url = os.environ.get("DATABASE_URL", "")
        self.pg_name: str | None = None
        self._admin: dict | None = None
        if self.base_url.startswith(("postgres://", "postgresql://", "pgsql://")):
            import dj_database_url

            parsed = dj_database_url.parse(self.base_url)
            self._admin = {
                "host": parsed.get("HOST") or None,
                "port": parsed.get("PORT") or None,
                "user": parsed.get("USER") or None,
                "password": parsed.get("PASSWORD") or None,
                "dbname": parsed.get("NAME") or "postgres",
            }
            self.pg_name = f"chaos_{uuid.uuid4().hex[:12]}"
            prefix, _, rest = self.base_url.partition("://")
            netloc, _, tail = rest.partition("/")
            query = tail.partition("?")[2]
            self.url = f"{prefix}://{netloc}/{self.pg_name}" + (f"?{query}" if query else "")
        else:
            self.url = f"sqlite:///{workdir / 'db.sqlite3'}"

    def _execute(self, sql: str) -> None:
        import psycopg

        kwargs = {k: v for k, v in self._admin.items() if v is not None}
        with psycopg.connect(**kwargs, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        if self.pg_name:
            self._execute(f'CREATE DATABASE "{self.pg_name}"')

    def drop(self) -> None:
        if self.pg_name:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:
                pass
            self._execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
