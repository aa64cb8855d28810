"""Small helpers every benchmark module uses."""

from __future__ import annotations

import json
import math
import sys

SMALL = 64  # px: a swatch this small makes PNG encoding and thumbnails negligible


def scaled(env: dict, n: int) -> int:
    """``n`` generations times ``--scale`` (a trial run), at least 10."""
    return max(10, int(n * env["scale"]))


def say(msg: str) -> None:
    """Progress, on stderr (stdout has the JSON lines only)."""
    print(f"  {msg}", file=sys.stderr, flush=True)


def swatch_graph() -> dict:
    from django.conf import settings

    return json.loads((settings.WORKFLOWS_DIR / "color_swatch.api.json").read_text())


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1): the smallest value with at least a
    fraction ``q`` of the values at or below it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
