"""The matrix review: layout arithmetic, windows in a fixed number of queries, and
decisions on rows, columns and selections that follow the single-brief rules."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviewapp.briefs.models import Generation
from reviewapp.campaigns import decisions, plans, scheduler, services
from reviewapp.campaigns.matrix import Layout, LayoutError, window
from tests.conftest import PASSWORD

from .helpers import swatch_version

pytestmark = pytest.mark.django_db


def three_axis_campaign(operator, submit=True):
    version = swatch_version()
    spec = {
        "axes": [
            {"name": "colour", "property": "color",
             "values": {"red": "#ff0000", "blue": "#0000ff"}},
            {"name": "width", "property": "width", "values": [64, 128, 256]},
            {"name": "blur", "property": "blur_radius", "values": [1, 3, 5, 7]},
        ],
        "fixed": {"height": 64},
    }  # fmt: skip
    plan = plans.matrix_plan(spec, version.contract())
    campaign = services.create_draft(version, plan, actor=operator, options=services.Options())
    return services.submit(campaign, actor=operator) if submit else campaign


def awaiting_all(campaign):
    Generation.objects.filter(lane=campaign.lane).update(status="awaiting_review")


def test_the_layout_finds_each_cell_by_arithmetic(operator, workflows):
    campaign = three_axis_campaign(operator)
    cells = {
        (c.coords["colour"], c.coords["width"], c.coords["blur"]): c.index
        for c in campaign.cells.all()
    }
    layout = Layout.of(campaign, "blur", "colour", {"width": "128"})
    assert layout.row_labels == ["1", "3", "5", "7"] and layout.col_labels == ["red", "blue"]
    for row, blur in enumerate(layout.row_labels):
        for col, colour in enumerate(layout.col_labels):
            assert layout.index_at(row, col) == cells[(colour, "128", blur)]
    # Without a choice the other axis shows its first value.
    assert Layout.of(campaign, "blur", "colour").fixed == {"width": "64"}


@pytest.mark.parametrize(
    ("rows", "cols", "fixed", "problem"),
    [
        ("size", "", {}, "'size' is not an axis of this campaign (colour, width, blur)"),
        ("blur", "blur", {}, "choose two different axes for rows and columns"),
        ("blur", "colour", {"width": "999"}, "width has no value '999'"),
    ],
)
def test_a_layout_that_does_not_fit_says_why(operator, workflows, rows, cols, fixed, problem):
    campaign = three_axis_campaign(operator, submit=False)
    with pytest.raises(LayoutError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Layout.of(campaign, rows, cols, fixed)


def test_a_window_costs_the_same_queries_for_any_number_of_cells(operator, workflows):
    small = three_axis_campaign(operator)
    version = swatch_version()
    spec = {"axes": [
        {"name": "colour", "property": "color", "values": list(range(60))},
        {"name": "width", "property": "width", "values": list(range(64, 64 + 40))},
    ]}  # fmt: skip
    big = services.submit(
        services.create_draft(
            version,
            plans.matrix_plan(spec, version.contract()),
            actor=operator,
            options=services.Options(),
        ),
        actor=operator,
    )
    counts = []
    for campaign, rows in ((small, 2), (big, 5)):
        layout = Layout.of(campaign)
        with CaptureQueriesContext(connection) as queries:
            cells = window(campaign, layout, 0, rows)
        counts.append(len(queries))
        assert len(cells) == rows * len(layout.col_labels)
        assert all(c["status"] == "held" for c in cells)
    assert counts[0] == counts[1]
    with pytest.raises(LayoutError):
        window(big, Layout.of(big), 0, 6)  # 6 x 40 > 200 cells


def test_a_reviewer_approves_a_row_and_rejects_a_column_with_a_tag(operator, reviewer, workflows):
    campaign = three_axis_campaign(operator)
    awaiting_all(campaign)
    layout = Layout.of(campaign, "blur", "colour", {"width": "64"})
    row = decisions.target_indexes(layout, row=0)
    done, problems = decisions.decide(campaign, row, "approve", actor=reviewer)
    assert done == row and len(row) == 2 and problems == []
    col = decisions.target_indexes(layout, col=1)
    done, problems = decisions.decide(campaign, col, "reject", actor=reviewer, tags=["Off-brand"])
    # The blue cell of the approved row stays approved: 3 of the column are rejected.
    assert len(done) == 3 and len(problems) == 1
    statuses = {c["index"]: c["status"] for c in window(campaign, layout, 0, 4)}
    assert sorted(statuses.values()).count("rejected") == 3
    assert decisions.rejected_indexes(campaign) == sorted(done)


def test_the_operator_who_submitted_may_not_approve_their_cells(operator, workflows, settings):
    from reviewapp.accounts import roles
    from tests.conftest import make_user

    both = make_user("bea", roles.OPERATOR, roles.REVIEWER)
    campaign = three_axis_campaign(both)
    awaiting_all(campaign)
    done, problems = decisions.decide(campaign, [0, 1], "approve", actor=both)
    assert done == [] and len(problems) == 2


def test_regenerating_the_rejected_cells_holds_new_seeds_for_the_scheduler(
    operator, reviewer, workflows, rq_queue, django_capture_on_commit_callbacks
):
    campaign = three_axis_campaign(operator)
    awaiting_all(campaign)
    decisions.decide(campaign, [0, 5, 9], "reject", actor=reviewer, tags=["Composition"])
    done, problems = decisions.decide(
        campaign, decisions.rejected_indexes(campaign), "regenerate", actor=reviewer
    )
    assert done == [0, 5, 9] and problems == []
    children = Generation.objects.filter(lane=campaign.lane, parent__isnull=False)
    assert children.count() == 3 and {c.status for c in children} == {"held"}
    # Each cell now shows its regeneration; the rejected parent stays rejected.
    layout = Layout.of(campaign, "width", "colour", {"blur": "3"})
    shown = {c["index"]: c for c in window(campaign, layout, 0, 3)}
    assert shown[5]["regenerated"] and shown[5]["status"] == "held"
    with django_capture_on_commit_callbacks(execute=True):
        released = scheduler.tick()
    assert released == {campaign.pk: 3}


def test_the_decide_endpoint_answers_json(client, operator, reviewer, workflows):
    campaign = three_axis_campaign(operator)
    awaiting_all(campaign)
    client.login(username=reviewer.username, password=PASSWORD)
    url = reverse("campaign_matrix_decide", args=[campaign.pk])
    body = {"action": "approve", "col": 0, "layout": {"rows": "blur", "cols": "colour"}}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 200 and len(response.json()["done"]) == 4
    response = client.post(url, "[]", content_type="application/json")
    assert response.json() == {"error": "send a JSON object"}
    body = {"action": "approve", "row": 99, "layout": {}}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and "outside the matrix" in response.json()["error"]
    client.login(username=operator.username, password=PASSWORD)
    body = {"action": "approve", "cells": [1]}
    response = client.post(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    page = client.get(reverse("campaign_matrix", args=[campaign.pk]) + "?rows=nope")
    assert page.status_code == 400


def test_a_row_file_is_laid_out_as_a_sheet(operator, workflows):
    version = swatch_version()
    data = b"sku,color\n" + b"".join(b"S%d,#00ff%02x\n" % (i, i) for i in range(8))
    plan = plans.rows_plan(data, "rows.csv", version.contract())
    campaign = services.submit(
        services.create_draft(version, plan, actor=operator, options=services.Options()),
        actor=operator,
    )
    layout = Layout.of(campaign)
    assert (layout.row_labels, layout.col_labels) == (["1", "7"], ["1", "2", "3", "4", "5", "6"])
    cells = window(campaign, layout, 0, 2)
    assert [c["index"] for c in cells] == list(range(8))
    assert layout.index_at(1, 2) is None  # past the last row
