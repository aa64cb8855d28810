"""A real worker process, stopped with SIGTERM in the middle of a job."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_lib

from comfybridge.sim.process import SimProcess

ROOT = Path(__file__).resolve().parents[2]

SUBMIT = """
from django.contrib.auth.models import Group, User
from reviewapp.briefs import services
from reviewapp.catalog.models import WorkflowVersion
user = User.objects.create_user("op")
user.groups.add(Group.objects.get(name="operator"))
version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
brief = services.submit_brief(version, {"color": 255, "width": 1024, "height": 1024}, actor=user)
print(brief.generations.get().pk)
"""


def manage(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True, **kwargs,
    )  # fmt: skip


def status_of(db: Path, pk: int) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status FROM briefs_generation WHERE id = ?", [pk]).fetchone()[0]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_worker_given_sigterm_finishes_its_current_job(tmp_path, redis_url):
    redis_lib.from_url(redis_url).flushdb()
    db = tmp_path / "db.sqlite3"
    # About 1.5 s per image node at 1024x1024: long enough to stop the worker mid-job.
    with SimProcess(args=("--ms-per-megapixel", "1500")) as sim:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db}",
            "VAR_DIR": str(tmp_path),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "REDIS_URL": redis_url,
            "COMFYUI_URL": sim.url,
            "DJANGO_DEBUG": "1",
        }
        manage(env, "migrate", "-v0")
        manage(env, "load_workflows")
        pk = int(manage(env, "shell", "-c", SUBMIT).stdout.split()[-1])
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", "default",
             "--worker-class", "rq.worker.SimpleWorker"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: status_of(db, pk) == "running", 20, "the job to start")
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert "warm shut down requested" in output.lower() or "shutting down" in output.lower()
    assert status_of(db, pk) == "awaiting_review"
    assert worker.returncode == 0
    redis_lib.from_url(redis_url).flushdb()
