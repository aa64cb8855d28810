"""How a run's spans read on the generation page."""

import pytest
from django.urls import reverse

from reviewapp.briefs import services
from reviewapp.briefs.templatetags.briefs import seconds
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import run_worker


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.084, "0.08 s"), (9.994, "9.99 s"), (12.34, "12.3 s"), (89.9, "89.9 s"), (125, "2 min 5 s")],
)
def test_a_span_keeps_hundredths_only_while_they_mean_something(value, shown):
    assert seconds(value) == shown


@pytest.mark.django_db(transaction=True)
def test_a_finished_generation_shows_its_pool_and_timings(
    client, operator, reviewer, workflows, comfy, rq_queue
):
    version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
    brief = services.submit_brief(
        version, {"color": 0x336699, "width": 64, "height": 64}, actor=operator
    )
    run_worker(rq_queue)
    generation = brief.generations.get()
    client.force_login(reviewer)
    page = client.get(reverse("generation_detail", args=[generation.pk])).content.decode()
    assert "<dt>Pool</dt><dd>default</dd>" in page
    for label, span in (("Queue wait", "queue_wait"), ("GPU time", "gpu"), ("Ingest", "ingest")):
        assert f"<dt>{label}</dt><dd>{seconds(generation.timings[span])}</dd>" in page
    # Nothing of the waiting line on a finished one.
    assert "in line in pool" not in page and "Waiting: " not in page
