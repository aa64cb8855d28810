"""Plain functions that make rows for tests."""

from __future__ import annotations

from reviewapp.briefs import services
from reviewapp.briefs.models import Brief, Generation
from reviewapp.catalog.models import WorkflowVersion


def swatch_params(**overrides) -> dict:
    params = {"color": 0x3366CC, "width": 64, "height": 64}
    params.update(overrides)
    return params


def submit_swatch(operator, **overrides) -> Brief:
    version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
    return services.submit_brief(version, swatch_params(**overrides), actor=operator)


def awaiting_generation(operator, **overrides) -> Generation:
    """A generation that ran (without a backend) and waits for review."""
    brief = submit_swatch(operator, **overrides)
    generation = brief.generations.get()
    generation.status = Generation.Status.AWAITING_REVIEW
    generation.save()
    return generation
