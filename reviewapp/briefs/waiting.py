"""Where a queued generation stands in its pool's line, and about how long until it runs.

Read by pages, so it never asks a backend anything: the line is the pool's queued rows in
the order their jobs were created, the pace is the median execution span of the pool's
recent runs (ComfyUI's own timestamps), and the backends that share the line are those the
pool's shared state last saw ready. Positions of a whole page come from one query.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, F, OuterRef, Subquery

from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import backends

# Finished runs of a pool that set its pace.
RECENT_RUNS = 30


@dataclass(frozen=True)
class Place:
    pool: str
    position: int  # 1: the next one a backend takes
    eta_s: float | None  # None: no run of this pool finished yet to judge by
    reason: str  # why no backend takes it now, when that is the case

    @property
    def text(self) -> str:
        where = f"{_ordinal(self.position)} in line in pool {self.pool}"
        if self.reason:
            return where
        if self.eta_s is None:
            return f"{where} · no estimate yet"
        return f"{where} · starts in about {_duration(self.eta_s)}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _ahead_counts(ids: list[int]) -> dict[int, int]:
    """Queued rows of the same pool created before each of ``ids``: one query."""
    earlier = (
        Generation.objects.filter(pool=OuterRef("pool"), status=Generation.Status.QUEUED)
        # A range on the (pool, status, created_at) index; ties broken by id.
        .filter(created_at__lte=OuterRef("created_at"))
        .exclude(created_at=OuterRef("created_at"), pk__gte=OuterRef("pk"))
        .order_by()
        .values("pool")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = Generation.objects.filter(pk__in=ids).annotate(ahead=Subquery(earlier))
    return {pk: ahead or 0 for pk, ahead in rows.values_list("pk", "ahead")}


def pace(pool: str) -> float | None:
    """Median execution seconds of the pool's recent runs, or None before the first."""
    spans = (
        Generation.objects.filter(pool=pool, execution_ended_at__isnull=False)
        .exclude(execution_started_at=None)
        .order_by("-execution_ended_at")
        .annotate(span=F("execution_ended_at") - F("execution_started_at"))
        .values_list("span", flat=True)[:RECENT_RUNS]
    )
    seconds = [s.total_seconds() for s in spans]
    return statistics.median(seconds) if seconds else None


def places(generations: Iterable[Generation]) -> dict[int, Place]:
    """The place of each queued generation among ``generations``, by id."""
    queued = [g for g in generations if g.status == Generation.Status.QUEUED]
    if not queued:
        return {}
    ahead = _ahead_counts([g.pk for g in queued])
    pools = {g.pool for g in queued}
    paces = {pool: pace(pool) for pool in pools}
    ready = {pool: backends.ready_count(pool) for pool in pools}
    found = {}
    for g in queued:
        position = ahead.get(g.pk, 0) + 1
        per_run, lanes = paces[g.pool], max(1, ready[g.pool])
        eta = None if per_run is None else math.ceil(position / lanes) * per_run
        found[g.pk] = Place(g.pool, position, eta, g.waiting_reason)
    return found


def attach_places(generations: list[Generation]) -> None:
    """Set ``place`` (a ``Place`` or None) on each generation, for templates."""
    found = places(generations)
    for g in generations:
        g.place = found.get(g.pk)
