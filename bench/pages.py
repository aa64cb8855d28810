"""P4: the busiest pages with 100,000 generations (and their assets, briefs and audit
events) in the database. Rows are seeded with bulk_create; pages are requested through
Django's test Client in this process, timing the whole request and counting its queries."""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

from django.core.paginator import Paginator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

GENERATIONS = 100_000
PER_BRIEF = 5  # generations per brief; one extra brief has 50
STATUSES = ["awaiting_review", "awaiting_review", "approved", "rejected", "failed"]


def seed(users, n: int = GENERATIONS) -> dict:
    from reviewapp.accounts import roles
    from reviewapp.audit.models import AuditEvent
    from reviewapp.briefs.models import Asset, Brief, Generation
    from reviewapp.catalog.models import WorkflowVersion

    operator = users[roles.OPERATOR]
    version = WorkflowVersion.objects.get(
        workflow__slug="color_swatch", status=WorkflowVersion.Status.PUBLISHED
    )
    start = timezone.now() - timedelta(days=60)
    step = timedelta(days=59) / n
    nbriefs = n // PER_BRIEF
    briefs = Brief.objects.bulk_create(
        [Brief(workflow_version=version, created_by=operator,
               created_at=start + i * PER_BRIEF * step,
               params={"color": i % 0xFFFFFF, "width": 256, "height": 256, "blur_radius": 1})
         for i in range(nbriefs)], batch_size=2000,
    )  # fmt: skip
    big = Brief.objects.create(workflow_version=version, created_by=operator,
                               params=briefs[0].params)  # fmt: skip
    owners = [b for b in briefs for _ in range(PER_BRIEF)] + [big] * 50
    now = timezone.now()
    gens = Generation.objects.bulk_create(
        [Generation(brief=b, params=b.params, created_by=operator, status=STATUSES[i % 5],
                    created_at=start + i * step, finished_at=start + i * step, progress=1.0,
                    backend="http://127.0.0.1:8188", prompt_id=None,
                    queue_deadline=now) for i, b in enumerate(owners)],
        batch_size=2000,
    )  # fmt: skip
    Asset.objects.bulk_create(
        [Asset(generation=g, node_id="3", index=0, file=f"assets/{i % 256:02x}/{i:064x}.png",
               thumbnail=f"thumbs/{i % 256:02x}/{i:064x}.webp", sha256=f"{i:064x}",
               width=256, height=256, size=1000) for i, g in enumerate(gens)],
        batch_size=2000,
    )  # fmt: skip
    AuditEvent.objects.bulk_create(
        [AuditEvent(created_at=start + i * step, actor=operator, actor_ref=operator.pk,
                    actor_name=operator.username, action="generation.queued",
                    target_type="briefs.generation", target_id=str(g.pk),
                    workflow_slug="color_swatch", changes={"brief": g.brief_id},
                    row_mac=os.urandom(32).hex())
         for i, g in enumerate(gens)], batch_size=2000,
    )  # fmt: skip
    small = briefs[len(briefs) // 2]
    one = Brief.objects.create(workflow_version=version, created_by=operator,
                               params=briefs[0].params)  # fmt: skip
    Generation.objects.create(brief=one, params=one.params, created_by=operator,
                              status="awaiting_review")  # fmt: skip
    middle = gens[len(gens) // 2 - (len(gens) // 2) % 5].pk  # awaiting review (STATUSES)
    return {"big_brief": big.pk, "brief": small.pk, "one_brief": one.pk, "middle": middle}


@contextmanager
def page_size(module: str, per_page: int | None):
    """Run the view with its Paginator at another page size (None: as shipped)."""
    if per_page is None:
        yield
        return

    if module == "reviewapp.review.views":  # a CappedPaginator of PER_PAGE
        with mock.patch(f"{module}.PER_PAGE", per_page):
            yield
        return

    def sized(object_list, _per_page, *args, **kwargs):
        return Paginator(object_list, per_page, *args, **kwargs)

    with mock.patch(f"{module}.Paginator", sized):
        yield


def measure(client: Client, url: str, reps: int = 30, warm: int = 3) -> dict:
    times, counts = [], set()
    for i in range(warm + reps):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        if i >= warm:
            times.append(elapsed)
            counts.add(len(ctx.captured_queries))
    times.sort()
    return {
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p95_ms": round(1000 * times[int(0.95 * len(times)) - 1], 1),
        "queries": sorted(counts),
    }


def run(users, reps: int = 30) -> list[dict]:
    from reviewapp.accounts import roles

    t0 = time.monotonic()
    ids = seed(users)
    seeded_s = time.monotonic() - t0
    clients = {}
    for role in (roles.OPERATOR, roles.REVIEWER, roles.AUDITOR):
        clients[role] = Client()
        clients[role].force_login(users[role])
    pages = [
        ("review_queue", roles.REVIEWER, "/review/", "reviewapp.review.views", 48),
        (
            "review_queue_any",
            roles.REVIEWER,
            "/review/?status=all&sort=newest",
            "reviewapp.review.views",
            48,
        ),
        ("brief_list", roles.OPERATOR, "/briefs/", "reviewapp.briefs.views", 25),
        ("audit", roles.AUDITOR, "/audit/", "reviewapp.audit.views", 50),
    ]
    lines = []
    for name, role, url, module, shipped in pages:
        full = measure(clients[role], url, reps)
        with page_size(module, 5):
            small = measure(clients[role], url, max(5, reps // 3))
        deep_url = url + ("&" if "?" in url else "?") + "page=500"
        deep = measure(clients[role], deep_url, max(5, reps // 3))
        lines.append(_line(name, url, full, {"page_size": shipped, **full},
                           {"page_size": 5, **small}, deep))  # fmt: skip
    # An image's page inside the queue (reviewer): its claim, position ("n of 1,000+"),
    # next and previous under a filter and sort, in the middle of 40,000 awaiting review.
    image = f"/generations/{ids['middle']}/?status=awaiting_review&sort=newest"
    in_queue = measure(clients[roles.REVIEWER], image, reps)
    lines.append(_line("generation_in_queue", image, in_queue, in_queue, in_queue, None))
    detail = f"/briefs/{ids['big_brief']}/"
    full = measure(clients[roles.OPERATOR], detail, reps)
    five = measure(clients[roles.OPERATOR], f"/briefs/{ids['brief']}/", max(5, reps // 3))
    one = measure(clients[roles.OPERATOR], f"/briefs/{ids['one_brief']}/", max(5, reps // 3))
    lines.append(
        _line("brief_detail", detail, full, {"generations": 50, **full},
              {"generations": 1, **one}, None, extra={"five_generations": five})
    )  # fmt: skip
    for line in lines:
        line["seed_s"] = round(seeded_s, 1)
    return lines


def _line(name, url, full, big, small, deep, extra=None) -> dict:
    independent = big["queries"] == small["queries"] and len(big["queries"]) == 1
    line = {
        "bench": "P4", "page": name, "url": url, "generations": GENERATIONS,
        "database": connection.vendor, "p50_ms": full["p50_ms"], "p95_ms": full["p95_ms"],
        "queries": full["queries"][0] if len(full["queries"]) == 1 else full["queries"],
        "full_page": big, "small_page": small,
    }  # fmt: skip
    if deep:
        line["page_500"] = deep
    if extra:
        line.update(extra)
    line.update({
        "queries_independent_of_page_size": independent,
        "target": "p95 <= 50 ms; same query count at every page size",
        "met": full["p95_ms"] <= 50 and independent,
    })  # fmt: skip
    return line
