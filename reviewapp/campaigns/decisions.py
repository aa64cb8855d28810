"""Deciding on a campaign's cells from the matrix: one cell, a row, a column, a selection,
or every rejected cell. Each cell's decision is review.services' own, so N-of-M approvals,
four eyes, claims and the audit apply to every cell exactly as to a single brief."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from reviewapp.briefs.models import Generation
from reviewapp.campaigns import plans
from reviewapp.campaigns.matrix import Layout, latest_generations, latest_of_cell
from reviewapp.campaigns.models import Campaign, Cell
from reviewapp.review import services as review
from reviewapp.review.errors import DecisionRefused

ACTIONS = ("approve", "reject", "regenerate")


def target_indexes(layout: Layout, *, cells=(), row=None, col=None) -> list[int]:
    """The cell indexes of a selection, a row or a column of the layout."""
    if row is not None:
        if not 0 <= row < len(layout.row_labels):
            raise DecisionRefused(f"row {row + 1} is outside the matrix")
        return sorted(layout.indexes(range(row, row + 1)))
    if col is not None:
        if not 0 <= col < len(layout.col_labels):
            raise DecisionRefused(f"column {col + 1} is outside the matrix")
        return sorted(layout.indexes(range(len(layout.row_labels)), range(col, col + 1)))
    return sorted({i for i in cells if 0 <= i < layout.cell_count})


def rejected_indexes(campaign: Campaign) -> list[int]:
    """Cells whose latest generation was rejected: what "regenerate the rejected" runs."""
    return list(
        Cell.objects.filter(campaign=campaign)
        .annotate(latest_status=latest_of_cell("status"))
        .filter(latest_status=Generation.Status.REJECTED)
        .order_by("index")
        .values_list("index", flat=True)
    )


def decide(
    campaign: Campaign,
    indexes: list[int],
    action: str,
    *,
    actor,
    reason: str = "",
    tags: list[str] | None = None,
) -> tuple[list[int], list[str]]:
    """Apply `action` to each cell's latest generation, each in its own transaction.
    Returns (indexes done, problems naming the cell); a refusal does not stop the rest."""
    if action not in ACTIONS:
        return [], [f"unknown action {action[:20]!r}: choose approve, reject or regenerate"]
    latest = latest_generations(campaign, indexes)
    by_generation = {g.pk: i for i, g in latest.items() if g is not None}
    generations = [g for g in latest.values() if g is not None]
    if action in ("approve", "reject"):
        decided, problems = review.bulk_decide(
            generations, action, actor=actor, reason=reason, tags=tags
        )
        return sorted(by_generation[g.pk] for g in decided), _named(campaign, problems)
    done, problems = [], []
    for generation in generations:
        try:
            with transaction.atomic():
                # Decided under the campaign's lock: a cancel committing meanwhile
                # either comes first (nothing held) or cancels this child too.
                status = (
                    Campaign.objects.select_for_update()
                    .values_list("status", flat=True)
                    .get(pk=campaign.pk)
                )
                hold = status in (Campaign.Status.RUNNING, Campaign.Status.PAUSED)
                review.regenerate(generation, actor=actor, hold=hold)
        except (DecisionRefused, PermissionDenied) as exc:
            problems.append(f"#{generation.pk}: {exc or 'not allowed'}")
        else:
            done.append(by_generation[generation.pk])
    return sorted(done), _named(campaign, problems)


def _named(campaign: Campaign, problems: list[str]) -> list[str]:
    """ "#12: Generation #12 is approved; ..." as "mug, night: Generation #12 is ...":
    a reviewer of a matrix thinks in cells."""
    ids = {}
    for problem in problems:
        head, _, rest = problem.partition(": ")
        if head.startswith("#") and head[1:].isdigit():
            ids[int(head[1:])] = rest
    if not ids:
        return problems
    cells = dict(Generation.objects.filter(pk__in=ids).values_list("pk", "brief__cell__coords"))
    named = []
    for problem in problems:
        head, _, rest = problem.partition(": ")
        coords = cells.get(int(head[1:])) if head[1:].isdigit() else None
        where = plans.in_plan_order(campaign.plan, coords or {}, {})
        label = ", ".join(str(v) for _, v in where) if coords else head
        named.append(f"{label}: {rest}" if coords else problem)
    return named
