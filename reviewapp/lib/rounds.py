"""The loop of the background commands that work in rounds (reconcile, schedule_campaigns):
once, or every N seconds for as long as the process runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import close_old_connections


def repeat(step: Callable[[], object], *, every: float, logger: logging.Logger, name: str):
    """Run `step` once (`every` 0: an error propagates), or every `every` seconds for
    ever: a round that fails (Redis or the database down for a moment) is logged and the
    next one tried. Yields each round's result (nothing for a failed round); between
    rounds the database connection is dropped if it broke or aged."""
    while True:
        try:
            result = step()
        except Exception:
            if not every:
                raise
            logger.exception("%s round failed", name)
        else:
            yield result
        finally:
            close_old_connections()
        if not every:
            return
        time.sleep(every)
