"""Submitting a campaign: every cell created, held and audited in one go, nothing queued."""

from __future__ import annotations

import pytest

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import plans, services
from reviewapp.campaigns.models import Campaign, Cell

from .helpers import swatch_campaign, swatch_version

pytestmark = pytest.mark.django_db


def test_a_draft_creates_nothing_to_run(operator, workflows):
    campaign = swatch_campaign(operator, 3, sizes=(64, 128), submit=False)
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.cell_count == 6
    assert not Generation.objects.exists()


def test_submit_holds_every_cell_and_audits_each(operator, workflows, rq_queue):
    campaign = swatch_campaign(operator, 3, sizes=(64, 128))
    assert campaign.status == Campaign.Status.RUNNING
    cells = list(Cell.objects.filter(campaign=campaign).select_related("brief"))
    assert [c.index for c in cells] == list(range(6))
    # The last axis varies fastest.
    assert [c.coords for c in cells[:2]] == [
        {"colour": "0", "size": "64"},
        {"colour": "0", "size": "128"},
    ]
    assert cells[1].brief.params["width"] == 128
    generations = Generation.objects.filter(lane=campaign.lane)
    assert generations.count() == 6
    assert set(generations.values_list("status", flat=True)) == {"held"}
    assert all(g.queue_deadline is None for g in generations)
    held = AuditEvent.objects.filter(action=actions.GENERATION_HELD)
    assert held.count() == 6
    assert {e.changes["cell"] for e in held} == set(range(6))
    assert AuditEvent.objects.filter(action=actions.CAMPAIGN_SUBMITTED).count() == 1
    assert rq_queue.count == 0  # the scheduler releases them
    # Appended in bulk, the events chain like any others.
    from reviewapp.audit.sealer import seal_all
    from reviewapp.audit.verify import verify

    seal_all()
    report = verify()
    assert report.intact, report.problems


def test_submitting_twice_creates_the_cells_once(operator, workflows, rq_queue):
    campaign = swatch_campaign(operator, 2)
    services.submit(campaign, actor=operator)
    assert Cell.objects.filter(campaign=campaign).count() == 2


def test_one_bad_cell_refuses_the_whole_plan_naming_it(operator, workflows):
    version = swatch_version()
    spec = {
        "axes": [{"name": "size", "property": "width", "values": [64, 5000, 128]}],
        "fixed": {"color": 1},
    }
    plan = plans.matrix_plan(spec, version.contract())
    with pytest.raises(plans.PlanInvalid) as exc:
        services.create_draft(version, plan, actor=operator, options=services.Options())
    assert exc.value.problems == [
        "cell 2 (size=5000): width: 5000 is greater than the maximum of 1024"
    ]
    assert not Campaign.objects.exists()


def test_the_cell_cap_is_enforced_before_expanding(operator, workflows, settings):
    settings.CAMPAIGN_MAX_CELLS = 10
    version = swatch_version()
    spec = {
        "axes": [
            {"name": "colour", "property": "color", "values": list(range(4))},
            {"name": "size", "property": "width", "values": [64, 128, 256]},
        ]
    }
    plan = plans.matrix_plan(spec, version.contract())
    with pytest.raises(plans.PlanInvalid) as exc:
        services.create_draft(version, plan, actor=operator, options=services.Options())
    assert str(exc.value).startswith(
        "4 colour \N{MULTIPLICATION SIGN} 3 size = 12 cells: a campaign has at most 10"
    )
