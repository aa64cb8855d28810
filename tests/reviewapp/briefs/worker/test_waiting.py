"""Where a queued generation stands, how long it will wait, and what one run took."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from comfybridge.sim.process import SimProcess
from reviewapp.briefs import waiting
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker import execution
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db


def queued(operator, n):
    return [submit_swatch(operator, color=0x200000 + i).generations.get() for i in range(n)]


def test_queued_generations_know_their_place_in_the_pool(operator, workflows, comfy):
    generations = queued(operator, 3)
    found = waiting.places(generations)
    assert [found[g.pk].position for g in generations] == [1, 2, 3]
    assert found[generations[1].pk].text == "2nd in line in pool default · no estimate yet"
    # Only queued rows stand in line: one a backend took is not counted ahead of anyone.
    Generation.objects.filter(pk=generations[0].pk).update(status=Generation.Status.RUNNING)
    found = waiting.places(Generation.objects.filter(pk__in=[g.pk for g in generations]))
    assert generations[0].pk not in found
    assert [found[g.pk].position for g in generations[1:]] == [1, 2]


def test_the_estimate_follows_the_pools_recent_run_times(operator, workflows, comfy, settings):
    done, *line = queued(operator, 4)
    start = timezone.now() - timedelta(minutes=1)
    Generation.objects.filter(pk=done.pk).update(
        status=Generation.Status.AWAITING_REVIEW,
        execution_started_at=start,
        execution_ended_at=start + timedelta(seconds=2),
    )
    found = waiting.places(line)
    # One backend: the third in line starts after three runs of two seconds.
    assert [found[g.pk].eta_s for g in line] == [2.0, 4.0, 6.0]
    assert found[line[2].pk].text == "3rd in line in pool default · starts in about 6 s"
    # Two backends share the line.
    settings.COMFYUI_POOLS = {"default": (comfy.url, "http://127.0.0.1:9")}
    found = waiting.places(line)
    assert [found[g.pk].eta_s for g in line] == [2.0, 2.0, 4.0]


def test_places_of_a_page_cost_the_same_queries_for_3_or_30(operator, workflows, comfy):
    generations = queued(operator, 30)
    counts = []
    for page in (generations[:3], generations):
        with CaptureQueriesContext(connection) as ctx:
            waiting.places(page)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_the_brief_page_shows_the_place_and_the_status_poll_carries_it(
    client, operator, workflows, comfy
):
    _, second = queued(operator, 2)
    client.force_login(operator)
    page = client.get(reverse("brief_detail", args=[second.brief_id]))
    assert "2nd in line in pool default" in page.content.decode()
    data = client.get(reverse("brief_status", args=[second.brief_id])).json()
    (entry,) = data["generations"]
    assert entry["place"].startswith("2nd in line in pool default")
    assert entry["waiting_reason"] == "" and entry["eta_s"] is None


def test_a_run_records_the_backends_own_execution_span(operator, workflows, settings, tmp_path):
    log = tmp_path / "timing.log"
    with SimProcess(args=("--ms-per-megapixel", "6000", "--timing-log", str(log))) as sim:
        settings.COMFYUI_POOLS = {"default": (sim.url,)}
        (generation,) = queued(operator, 1)
        execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    (line,) = [json.loads(text) for text in log.read_text().splitlines()]
    assert generation.execution_started_at.timestamp() == pytest.approx(
        line["execution_start"] / 1000, abs=0.001
    )
    assert generation.execution_ended_at.timestamp() == pytest.approx(line["end"] / 1000, abs=0.001)
    g = generation
    assert g.created_at <= g.submitted_at <= g.ingested_at
    assert g.execution_started_at <= g.execution_ended_at <= g.ingested_at
    # ~50 ms of simulated work (2 x 64 x 64 px at 6,000 ms per megapixel).
    assert 0.04 <= g.gpu_seconds < 1.0
    assert set(g.timings) == {"queue_wait", "gpu", "ingest"}


def test_a_backend_backing_off_does_not_count_towards_the_estimate(
    operator, workflows, comfy, settings
):
    from comfybridge.errors import ComfyUnavailable
    from reviewapp.briefs.worker import backends

    dead = "http://127.0.0.1:9"
    settings.COMFYUI_POOLS = {"default": (comfy.url, dead)}
    done, *line = queued(operator, 3)
    start = timezone.now() - timedelta(minutes=1)
    Generation.objects.filter(pk=done.pk).update(
        status=Generation.Status.AWAITING_REVIEW,
        execution_started_at=start,
        execution_ended_at=start + timedelta(seconds=2),
    )
    assert backends.ready_count("default") == 2
    backends.report_failure(dead, ComfyUnavailable("connection refused"))
    assert backends.ready_count("default") == 1
    assert [waiting.places(line)[g.pk].eta_s for g in line] == [2.0, 4.0]


def test_rows_created_in_the_same_instant_stand_in_id_order(operator, workflows, comfy):
    generations = queued(operator, 3)
    Generation.objects.filter(pk__in=[g.pk for g in generations]).update(created_at=timezone.now())
    found = waiting.places(generations)
    assert [found[g.pk].position for g in generations] == [1, 2, 3]
