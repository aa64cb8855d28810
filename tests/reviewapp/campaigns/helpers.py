"""Campaigns for tests, made through the services."""

from __future__ import annotations

from reviewapp.campaigns import plans, services
from reviewapp.catalog.models import WorkflowVersion


def swatch_version() -> WorkflowVersion:
    return WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")


def swatch_matrix(colors: int, sizes=(64,)) -> dict:
    return {
        "axes": [
            {"name": "colour", "property": "color", "values": list(range(colors))},
            {"name": "size", "property": "width", "values": list(sizes)},
        ],
        "fixed": {"height": 64},
    }


def swatch_campaign(operator, colors: int, *, sizes=(64,), submit=True, **options):
    version = swatch_version()
    plan = plans.matrix_plan(swatch_matrix(colors, sizes), version.contract())
    campaign = services.create_draft(
        version, plan, actor=operator, options=services.Options(**options)
    )
    if submit:
        campaign = services.submit(campaign, actor=operator)
    return campaign
