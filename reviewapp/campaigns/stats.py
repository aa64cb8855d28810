"""A campaign's figures: counts by status, decisions, GPU-seconds, pace and ETA, and the
estimate shown before submitting. Read-only; each is a query or two on the lane index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from reviewapp.briefs.models import Generation

# The pace is measured over this recent stretch.
PACE_WINDOW = timedelta(minutes=10)
# ... but never shorter than this (the first seconds say little).
MIN_PACE_SPAN = timedelta(seconds=15)
# Runs of a version averaged for an estimate.
ESTIMATE_RUNS = 50

_GPU_SPAN = ExpressionWrapper(
    F("execution_ended_at") - F("execution_started_at"), output_field=DurationField()
)


def lane_generations(campaign):
    return Generation.objects.filter(lane=campaign.lane)


def status_counts(campaign) -> dict[str, int]:
    """Generations of the campaign (regenerations included) by status; every status
    present, zero when none."""
    rows = lane_generations(campaign).values("status").annotate(n=Count("id")).order_by()
    counts = {status: 0 for status in Generation.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def gpu_seconds(generations) -> float:
    """The backends' execution time of these generations, in seconds."""
    total = generations.filter(
        execution_started_at__isnull=False, execution_ended_at__isnull=False
    ).aggregate(s=Sum(_GPU_SPAN))["s"]
    return total.total_seconds() if total else 0.0


@dataclass
class Decided:
    decided: int
    rejected: int
    # Runs that ended without an image (counted by the breaker beside the rejected).
    failed: int = 0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.decided if self.decided else 0.0

    @property
    def finished(self) -> int:
        return self.decided + self.failed

    @property
    def bad(self) -> int:
        return self.rejected + self.failed

    @property
    def bad_rate(self) -> float:
        """Rejected or failed, of the cells that were decided or failed."""
        return self.bad / self.finished if self.finished else 0.0


def decided(generations, since=None) -> Decided:
    """How many of `generations` were decided (since `since`), how many of those
    rejected (a regenerate of an image awaiting review is its rejection), and how many
    failed (since `since`, by when they ended)."""
    decided_q = Q(status__in=Generation.DECIDED)
    failed_q = Q(status=Generation.Status.FAILED)
    if since is not None:
        decided_q &= Q(decided_at__gte=since)
        failed_q &= Q(finished_at__gte=since)
    figures = generations.aggregate(
        decided=Count("id", filter=decided_q),
        rejected=Count("id", filter=decided_q & Q(status=Generation.Status.REJECTED)),
        failed=Count("id", filter=failed_q),
    )
    return Decided(figures["decided"] or 0, figures["rejected"] or 0, figures["failed"] or 0)


@dataclass
class Progress:
    counts: dict[str, int]
    cells: int
    gpu_seconds: float
    finished_recently: int  # runs ingested within `pace_span`
    approved_cells: int
    # The stretch the pace is measured over: PACE_WINDOW, or the time since submission
    # while the campaign is younger than that.
    pace_span: timedelta = PACE_WINDOW

    @property
    def remaining(self) -> int:
        return sum(self.counts[s] for s in Generation.CANCELLABLE)

    @property
    def per_minute(self) -> float:
        return self.finished_recently / (self.pace_span.total_seconds() / 60)

    @property
    def eta_seconds(self) -> float | None:
        if not self.remaining:
            return 0.0
        if not self.finished_recently:
            return None
        return self.remaining / self.per_minute * 60

    @property
    def eta_text(self) -> str:
        """As the page's script writes it too (campaign_status.js)."""
        if not self.remaining:
            return "nothing left to run"
        seconds = self.eta_seconds
        if seconds is None:
            return "not known yet"
        if seconds < 90:
            return f"{round(seconds)} s"
        if seconds < 5400:
            return f"{round(seconds / 60)} min"
        return f"{seconds / 3600:.1f} h"

    @property
    def done_fraction(self) -> float:
        runs = sum(self.counts.values())
        return 1 - self.remaining / runs if runs else 0.0

    def as_json(self) -> dict:
        return {
            "counts": self.counts,
            "cells": self.cells,
            "remaining": self.remaining,
            "approved_cells": self.approved_cells,
            "gpu_seconds": round(self.gpu_seconds, 1),
            "per_minute": round(self.per_minute, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "done_fraction": round(self.done_fraction, 4),
        }


def progress(campaign, now=None) -> Progress:
    now = now or timezone.now()
    generations = lane_generations(campaign)
    span = PACE_WINDOW
    if campaign.submitted_at is not None:
        span = max(min(PACE_WINDOW, now - campaign.submitted_at), MIN_PACE_SPAN)
    return Progress(
        pace_span=span,
        counts=status_counts(campaign),
        cells=campaign.cell_count,
        gpu_seconds=gpu_seconds(generations),
        finished_recently=generations.filter(ingested_at__gte=now - span).count(),
        approved_cells=generations.filter(status=Generation.Status.APPROVED)
        .values("brief_id")
        .distinct()
        .count(),
    )


def seconds_per_run(version) -> float | None:
    """The mean GPU-seconds of the version's recent runs, or None before its first."""
    recent = (
        Generation.objects.filter(
            brief__workflow_version=version,
            execution_started_at__isnull=False,
            execution_ended_at__isnull=False,
        )
        .order_by("-execution_ended_at")
        .values_list("execution_started_at", "execution_ended_at")[:ESTIMATE_RUNS]
    )
    spans = [(end - start).total_seconds() for start, end in recent]
    return sum(spans) / len(spans) if spans else None


@dataclass
class Estimate:
    cells: int
    seconds_per_run: float | None
    runs_measured: bool

    @property
    def gpu_seconds(self) -> float | None:
        if self.seconds_per_run is None:
            return None
        return self.cells * self.seconds_per_run


def estimate(version, cells: int) -> Estimate:
    per_run = seconds_per_run(version)
    return Estimate(cells, per_run, per_run is not None)
