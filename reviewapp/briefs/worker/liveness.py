"""Signs of life written onto the row while a worker follows a run: progress a few times a
second, and a heartbeat from a thread of its own, so the reconciler can tell a live worker
from a dead one."""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections
from django.utils import timezone

from comfybridge.client import Progress
from reviewapp.briefs.models import Generation

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL = 0.25


class ProgressWriter:
    """Writes progress onto the row, at most a few times a second."""

    def __init__(self, generation_id: int, graph: dict):
        self.generation_id = generation_id
        self.classes = {node_id: node.get("class_type", "") for node_id, node in graph.items()}
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        done = progress.fraction >= 1.0
        if not done and now - self._last < PROGRESS_WRITE_INTERVAL:
            return
        self._last = now
        text = ""
        if progress.node:
            text = self.classes.get(progress.node) or f"node {progress.node}"
            if progress.max > 1:
                text += f" step {progress.value}/{progress.max}"
        Generation.objects.filter(pk=self.generation_id, status=Generation.Status.RUNNING).update(
            progress=max(0.0, min(1.0, progress.fraction)),
            progress_text=text[:200],
            heartbeat_at=timezone.now(),
        )


class Heartbeat:
    """Touches the row's heartbeat while the job runs, from a thread of its own (the
    job may block for minutes in one call), so the reconciler can tell a live worker
    from a dead one."""

    def __init__(self, generation_id: int, interval: float):
        self.generation_id = generation_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")

    def _beat(self):
        while not self._stop.wait(self.interval):
            try:
                Generation.objects.filter(
                    pk=self.generation_id, status__in=Generation.ACTIVE
                ).update(heartbeat_at=timezone.now())
            except Exception:  # a passing database error must not kill the job
                logger.exception("heartbeat of generation %s failed", self.generation_id)
            finally:
                close_old_connections()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
