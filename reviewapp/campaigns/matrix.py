"""The matrix review's layout and its windows of cells.

A matrix plan's cells are the Cartesian product of its axes, numbered with the last axis
varying fastest, so a cell's index follows from its position on every axis. The reviewer
lays two axes out as rows and columns and picks one value of each other axis (a tab);
`Layout` turns a (row, column) position into the cell index and back, by arithmetic.
A row file's cells have no axes: they are laid out in reading order, SHEET_COLUMNS wide.

`window` reads the cells of a block of rows in a fixed number of queries, whatever the
campaign's size (the page fetches blocks as the reviewer scrolls): the cells by index,
each brief's latest generation (a regeneration replaces its parent in the cell), its
first image, and the standing decisions on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from reviewapp.briefs.models import Asset, Generation
from reviewapp.campaigns.models import Campaign, Cell

# A block the page fetches holds at most this many cells.
WINDOW_CELLS = 200
# Columns of a row file's contact sheet.
SHEET_COLUMNS = 6


class LayoutError(ValueError):
    """The axes or values asked for do not fit the campaign (named in the message)."""


@dataclass
class Layout:
    rows_axis: str
    cols_axis: str
    row_labels: list[str]
    col_labels: list[str]
    # Every axis's name, labels and position (the others fixed at `fixed`).
    axes: list[dict]
    fixed: dict[str, str]
    cell_count: int

    @classmethod
    def of(cls, campaign: Campaign, rows: str = "", cols: str = "", fixed=None) -> Layout:
        plan = campaign.plan
        if plan["kind"] != "matrix":
            count = campaign.cell_count
            columns = min(SHEET_COLUMNS, max(count, 1))
            n_rows = math.ceil(count / columns)
            return cls(
                "row",
                "column",
                [str(r * columns + 1) for r in range(n_rows)],
                [str(c + 1) for c in range(columns)],
                [],
                {},
                count,
            )
        axes = [
            {"name": axis["name"], "labels": [v["label"] for v in axis["values"]]}
            for axis in plan["axes"]
        ]
        names = [axis["name"] for axis in axes]
        if len(axes) == 1:
            # One axis: its values as rows of a single column.
            only = axes[0]
            return cls(only["name"], "", only["labels"], [""], axes, {}, campaign.cell_count)
        rows = rows or names[0]
        cols = cols or next(n for n in names if n != rows)
        for name in (rows, cols):
            if name not in names:
                raise LayoutError(f"{name!r} is not an axis of this campaign ({', '.join(names)})")
        if rows == cols:
            raise LayoutError("choose two different axes for rows and columns")
        by_name = {axis["name"]: axis for axis in axes}
        if len(by_name[cols]["labels"]) > WINDOW_CELLS:
            if len(by_name[rows]["labels"]) > WINDOW_CELLS:
                raise LayoutError(
                    f"both axes have more than {WINDOW_CELLS} values; lay out another axis"
                )
            rows, cols = cols, rows
        chosen = {}
        for axis in axes:
            if axis["name"] in (rows, cols):
                continue
            label = (fixed or {}).get(axis["name"]) or axis["labels"][0]
            if label not in axis["labels"]:
                raise LayoutError(f"{axis['name']} has no value {label[:60]!r}")
            chosen[axis["name"]] = label
        return cls(
            rows,
            cols,
            by_name[rows]["labels"],
            by_name[cols]["labels"],
            axes,
            chosen,
            campaign.cell_count,
        )

    @property
    def is_sheet(self) -> bool:
        return not self.axes

    def index_at(self, row: int, col: int) -> int | None:
        """The cell index at (row, col), or None where the sheet has no cell."""
        if self.is_sheet:
            index = row * len(self.col_labels) + col
            return index if index < self.cell_count else None
        if len(self.axes) == 1:
            return row
        position = {self.rows_axis: row, self.cols_axis: col}
        index = 0
        for axis in self.axes:
            at = position.get(axis["name"])
            if at is None:
                at = axis["labels"].index(self.fixed[axis["name"]])
            index = index * len(axis["labels"]) + at
        return index

    def indexes(self, rows: range, cols: range | None = None) -> dict[int, tuple[int, int]]:
        """{cell index: (row, col)} over a block."""
        cols = cols if cols is not None else range(len(self.col_labels))
        found = {}
        for row in rows:
            for col in cols:
                index = self.index_at(row, col)
                if index is not None:
                    found[index] = (row, col)
        return found

    @property
    def rows_per_window(self) -> int:
        return max(1, WINDOW_CELLS // max(1, len(self.col_labels)))

    def as_json(self) -> dict:
        return {
            "rows_axis": self.rows_axis,
            "cols_axis": self.cols_axis,
            "row_labels": self.row_labels,
            "col_labels": self.col_labels,
            "rows_per_window": self.rows_per_window,
        }


def latest_of_cell(field: str = "id") -> Subquery:
    """`field` of a cell's latest generation (a regeneration replaces its parent in the
    cell), to annotate Cell rows with: the one place this is written."""
    return Subquery(
        Generation.objects.filter(brief_id=OuterRef("brief_id")).order_by("-id").values(field)[:1]
    )


def latest_generations(campaign: Campaign, indexes):
    """{cell index: the brief's latest generation} for these indexes (one query)."""
    cells = (
        Cell.objects.filter(campaign=campaign, index__in=list(indexes))
        .annotate(latest_id=latest_of_cell())
        .values_list("index", "latest_id")
    )
    by_index = dict(cells)
    generations = Generation.objects.in_bulk([g for g in by_index.values() if g is not None])
    return {index: generations.get(gid) for index, gid in by_index.items()}


def window(campaign: Campaign, layout: Layout, row0: int, row1: int) -> list[dict]:
    """The cells of rows [row0, row1) as the page draws them. At most WINDOW_CELLS."""
    if row1 - row0 > layout.rows_per_window:
        raise LayoutError(f"ask for at most {layout.rows_per_window} rows at a time")
    places = layout.indexes(range(max(0, row0), min(row1, len(layout.row_labels))))
    latest = latest_generations(campaign, places)
    ids = [g.pk for g in latest.values() if g is not None]
    thumbs = {}
    for asset_id, generation_id in (
        Asset.objects.filter(generation_id__in=ids)
        .order_by("generation_id", "node_id", "index")
        .values_list("id", "generation_id")
    ):
        thumbs.setdefault(generation_id, asset_id)
    out = []
    for index, (row, col) in sorted(places.items(), key=lambda item: item[1]):
        generation = latest.get(index)
        out.append(
            {
                "index": index,
                "row": row,
                "col": col,
                "generation": generation.pk if generation else None,
                "status": generation.status if generation else "",
                "status_label": generation.get_status_display() if generation else "",
                "thumb": thumbs.get(generation.pk) if generation else None,
                "regenerated": bool(generation and generation.parent_id),
            }
        )
    return out
