"""P10: audit appends under 16 concurrent writers on PostgreSQL, against the same writers
inserting the same rows into a plain copy of the table, in one run. The audit side ends
only when the sealer (running beside the writers, as in production) has sealed every
event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .env import ROOT

WRITERS = 16
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_audit"


def _log(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _prepare_database(url: str) -> str | None:
    """Create the scratch database if needed; None when PostgreSQL cannot be reached."""
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    admin = dict(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=3,
        autocommit=True,
    )
    try:
        with psycopg.connect(**admin) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {admin['host']}:{admin['port']} not reachable: {exc}"
    return None


def _connect(url: str):
    """A plain connection of the benchmark's own, to watch the seal count cheaply."""
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    return psycopg.connect(
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
        user=cfg["USER"] or "postgres",
        password=cfg["PASSWORD"] or None,
        dbname=cfg["NAME"],
        autocommit=True,
    )


def _manage(env, *args) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _sql(env, sql: str):
    code = (
        "import django, sys; django.setup(); from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute(\"SET audit.allow_truncate = 'on'\"); c.execute(sys.argv[1])\n"
        "    print(c.fetchone()[0] if c.description else '')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, sql], env=env, check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


def _round(env, mode: str, per_writer: int, tmp: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"p10-{mode}-", dir=tmp))
    go = run_dir / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.audit_writer", mode, str(per_writer), str(w), str(go)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    sealer = None
    if mode == "audit":
        sealer = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "seal_audit", "--every", "0.5"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
    while len(list(run_dir.glob("ready-*"))) < WRITERS:
        time.sleep(0.05)
    go.touch()
    reports = [json.loads(w.communicate()[0]) for w in writers]
    start = min(r["start"] for r in reports)
    writers_end = max(r["end"] for r in reports)
    end = writers_end
    total = WRITERS * per_writer
    if sealer is not None:
        with _connect(env["DATABASE_URL"]) as conn:
            while conn.execute("SELECT count(*) FROM audit_auditseal").fetchone()[0] < total:
                time.sleep(0.02)
        end = time.time()
        sealer.terminate()
        sealer.wait()
    wall = end - start
    return {
        "events": total,
        "wall_s": round(wall, 2),
        "writers_s": round(writers_end - start, 2),
        "per_s": round(total / wall),
    }


def p10(env_info, users, results):
    url = os.environ.get("BENCH_PG_URL", DEFAULT_URL)
    problem = _prepare_database(url)
    if problem:
        return [{"bench": "P10", "skipped": problem + " (set BENCH_PG_URL)"}]
    env = {**os.environ, "DATABASE_URL": url}
    _log(f"P10 on {url.rsplit('@', 1)[-1]}")
    _manage(env, "migrate")
    _sql(env, "CREATE TABLE IF NOT EXISTS bench_plain_event (LIKE audit_auditevent INCLUDING ALL)")
    per_writer = max(50, int(2000 * env_info["scale"]))
    # Alternated twice, so a machine that slows down mid-run weighs on both sides.
    rounds = {"plain": [], "audit": []}
    verified = True
    for mode in ("plain", "audit", "plain", "audit"):
        _sql(env, "TRUNCATE bench_plain_event, audit_auditseal, audit_auditevent")
        rounds[mode].append(_round(env, mode, per_writer, env_info["tmp"]))
        _log(f"P10 {mode}: {rounds[mode][-1]}")
        if mode == "audit":
            check = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "verify_audit"],
                env=env,
                capture_output=True,
                text=True,
            )
            verified = verified and check.returncode == 0
    rate = {
        m: sum(r["events"] for r in rs) / sum(r["wall_s"] for r in rs) for m, rs in rounds.items()
    }
    ratio = rate["audit"] / rate["plain"]
    return [
        {
            "bench": "P10",
            "writers": WRITERS,
            "events_per_writer": per_writer,
            "plain_per_s": round(rate["plain"]),
            "audit_until_sealed_per_s": round(rate["audit"]),
            "rounds": rounds,
            "ratio": round(ratio, 3),
            "target": 0.8,
            "met": ratio >= 0.8,
            "verified": verified,
        }
    ]
