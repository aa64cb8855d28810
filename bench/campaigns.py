"""P8 (a 5,000-cell campaign through the web) and P9 (the matrix review, windowed)."""

from __future__ import annotations

import csv
import io
import random
import time

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from reviewapp.accounts import roles

from .common import percentile, say

CELLS = 5000
SINGLES = 200


def _rows_file(n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["sku", "locale", "color", "width", "height", "blur_radius"])
    rng = random.Random(8)
    for i in range(n):
        writer.writerow(
            [f"SKU-{i:05d}", rng.choice(["en-GB", "de-DE", "fr-FR"]),
             f"#{rng.randrange(1 << 24):06x}", rng.choice([256, 512]), 256, 1 + i % 5]
        )  # fmt: skip
    return out.getvalue().encode()


def _timed(fn):
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu0, time.perf_counter() - wall0


def p8(env, users, results):
    """The operator's path for a 5,000-row campaign: the new-campaign form (read the CSV,
    check every cell, keep the draft), then the submit (every brief, held generation,
    cell and audit event in bulk) and one scheduler round. CPU is this process's (it is
    the server: views, ORM, SQLite); the same run posts single-brief forms to compare."""
    from reviewapp.briefs.models import Generation
    from reviewapp.campaigns import scheduler
    from reviewapp.campaigns.models import Campaign

    client = Client()
    client.force_login(users[roles.OPERATOR])
    data = _rows_file(CELLS)

    def draft():
        response = client.post(
            "/workflows/color_swatch/campaign/",
            {
                "title": "bench",
                "plan_kind": "rows",
                "plan_file": SimpleUploadedFile("rows.csv", data, content_type="text/csv"),
            },
        )
        if response.status_code != 302:
            raise RuntimeError(f"the campaign form answered {response.status_code}")
        return Campaign.objects.latest("id")

    campaign, draft_cpu, draft_wall = _timed(draft)

    def submit():
        response = client.post(f"/campaigns/{campaign.pk}/submit/")
        if response.status_code != 302:
            raise RuntimeError(f"submit answered {response.status_code}")
        return scheduler.tick()

    released, submit_cpu, submit_wall = _timed(submit)
    held = Generation.objects.filter(lane=campaign.lane, status="held").count()
    cpu = draft_cpu + submit_cpu
    wall = draft_wall + submit_wall
    say(f"campaign: draft {draft_wall:.2f}s submit+round {submit_wall:.2f}s, cpu {cpu:.2f}s")

    def singles():
        for i in range(SINGLES):
            response = client.post(
                "/workflows/color_swatch/new/",
                {"color": f"#{i:06x}", "width": 256, "height": 256, "blur_radius": 1},
            )
            if response.status_code != 302:
                raise RuntimeError(f"the brief form answered {response.status_code}")

    _, single_cpu, single_wall = _timed(singles)
    per_cell_ms = 1000 * cpu / CELLS
    per_single_ms = 1000 * single_cpu / SINGLES
    say(f"single briefs: {per_single_ms:.2f} ms cpu each, {single_wall:.1f}s for {SINGLES}")
    return [
        {
            "bench": "P8",
            "cells": CELLS,
            "draft_s": round(draft_wall, 2),
            "submit_and_round_s": round(submit_wall, 2),
            "wall_s": round(wall, 2),
            "cpu_ms_per_cell": round(per_cell_ms, 3),
            "single_brief_cpu_ms": round(per_single_ms, 2),
            "single_over_cell_ratio": round(per_single_ms / per_cell_ms, 1),
            "held_after_round": held,
            "released_in_round": sum(released.values()),
            "target": {"cpu_ms_per_cell": 1.0, "wall_s": 5.0},
            "met": per_cell_ms <= 1.0 and wall <= 5.0 and held + sum(released.values()) == CELLS,
        }
    ]


# ----------------------------------------------------------------------------- P9


def _seed_matrix(users, rows: int, cols: int):
    """A submitted campaign of rows x cols cells, every cell awaiting review with an
    image, as a reviewer finds it once the GPUs are done."""
    from reviewapp.briefs.models import Asset, Generation
    from reviewapp.campaigns import plans, services
    from reviewapp.catalog.models import WorkflowVersion

    version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
    spec = {
        "axes": [
            {"name": "colour", "property": "color", "values": list(range(rows))},
            {"name": "width", "property": "width", "values": list(range(64, 64 + cols))},
        ]
    }
    operator = users[roles.OPERATOR]
    with override_settings(CAMPAIGN_MAX_CELLS=rows * cols):
        plan = plans.matrix_plan(spec, version.contract())
        campaign = services.create_draft(
            version, plan, actor=operator, options=services.Options(title="P9")
        )
        campaign = services.submit(campaign, actor=operator)
    generations = Generation.objects.filter(lane=campaign.lane)
    generations.update(status="awaiting_review")
    Asset.objects.bulk_create(
        [
            Asset(generation_id=pk, node_id="3", index=0, file="assets/x.png",
                  thumbnail="thumbs/x.webp", sha256="0" * 64, width=64, height=64, size=1)
            for pk in generations.values_list("id", flat=True)
        ],
        batch_size=1000,
    )  # fmt: skip
    return campaign


def _measure(client, campaign, windows: int, reps: int, rows_per_window: int):
    rng = random.Random(9)
    times, counts = [], set()
    url = f"/campaigns/{campaign.pk}/matrix/cells.json"
    for i in range(3 + reps):
        start = rng.randrange(0, windows) * rows_per_window
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = client.get(url, {"r0": start, "r1": start + rows_per_window})
            elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        cells = len(response.json()["cells"])
        if i >= 3:
            times.append(elapsed)
            counts.add(len(ctx.captured_queries))
    return {
        "p50_ms": round(1000 * percentile(times, 0.5), 1),
        "p95_ms": round(1000 * percentile(times, 0.95), 1),
        "queries": sorted(counts),
        "cells_per_window": cells,
    }


def p9(env, users, results):
    """GET the matrix's cells a window (at most 200) at a time, at random places of a
    2,500- and a 25,000-cell campaign: p95 and the queries per request, which must match."""
    from reviewapp.campaigns.matrix import Layout

    client = Client()
    client.force_login(users[roles.REVIEWER])
    lines, counts = [], []
    for rows, cols in ((50, 50), (125, 200)):
        t0 = time.monotonic()
        campaign = _seed_matrix(users, rows, cols)
        say(f"seeded {rows * cols} cells in {time.monotonic() - t0:.1f}s")
        layout = Layout.of(campaign)
        per = layout.rows_per_window
        figures = _measure(client, campaign, len(layout.row_labels) // per, 30, per)
        page = client.get(f"/campaigns/{campaign.pk}/matrix/")
        if page.status_code != 200:
            raise RuntimeError(f"the matrix page answered {page.status_code}")
        counts.append(figures["queries"])
        lines.append(
            {
                "bench": "P9",
                "cells": rows * cols,
                "layout": f"{len(layout.row_labels)} x {len(layout.col_labels)}",
                **figures,
                "target_p95_ms": 100,
                "met": figures["p95_ms"] <= 100,
            }
        )
    same = counts[0] == counts[1] and len(counts[0]) == 1
    for line in lines:
        line["same_queries_at_both_sizes"] = same
        line["met"] = line["met"] and same
    return lines
