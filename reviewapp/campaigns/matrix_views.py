"""The matrix review: the page (its frame), its windows of cells as JSON, and decisions
on cells, rows, columns, the selection and the rejected cells."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only
from reviewapp.campaigns import decisions
from reviewapp.campaigns.matrix import Layout, LayoutError, window
from reviewapp.campaigns.models import Campaign
from reviewapp.campaigns.views import visible_campaign
from reviewapp.review.errors import DecisionRefused

AT = "at-"  # the query parameter prefix of a fixed axis value: ?at-size=square


def _layout(campaign: Campaign, params) -> Layout:
    fixed = {key[len(AT) :]: value for key, value in params.items() if key.startswith(AT)}
    return Layout.of(campaign, params.get("rows", ""), params.get("cols", ""), fixed)


def _layout_query(layout: Layout) -> dict:
    query = {"rows": layout.rows_axis, "cols": layout.cols_axis}
    query.update({f"{AT}{name}": label for name, label in layout.fixed.items()})
    return query if layout.axes else {}


@require_GET
@login_only
def matrix(request, pk):
    campaign = visible_campaign(request, pk)
    try:
        layout = _layout(campaign, request.GET)
    except LayoutError as exc:
        layout = _layout(campaign, {})
        problem = str(exc)
    else:
        problem = ""
    query = urlencode(_layout_query(layout))
    here = reverse("campaign_matrix", args=[campaign.pk]) + (f"?{query}" if query else "")
    config = {
        **layout.as_json(),
        "cells_url": reverse("campaign_matrix_cells", args=[campaign.pk]),
        "decide_url": reverse("campaign_matrix_decide", args=[campaign.pk]),
        "detail_url": reverse("generation_detail", args=[0]),
        "thumb_url": reverse("asset_thumbnail", args=[0]),
        "layout_query": _layout_query(layout),
        "here": here,
        "can_decide": permissions.can_review(request.user),
        "can_regenerate": _may(request.user, campaign, "regenerate"),
        "tags": settings.REJECT_REASON_TAGS,
    }
    return render(
        request,
        "campaigns/matrix.html",
        {
            "campaign": campaign,
            "layout": layout,
            "axis_names": [axis["name"] for axis in layout.axes],
            "config": config,
            "problem": problem,
        },
        status=400 if problem else 200,
    )


def _may(user, campaign: Campaign, action: str) -> bool:
    """Approve and reject: reviewers (each cell then asks can_decide: four eyes).
    Regenerate: reviewers, and the campaign's operator (their own cells run again)."""
    if action == "regenerate":
        return permissions.can_review(user) or permissions.can_steer_campaign(user, campaign)
    return permissions.can_review(user)


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise LayoutError(f"{name} must be a whole number") from None


@require_GET
@login_only
def matrix_cells(request, pk):
    campaign = visible_campaign(request, pk)
    try:
        layout = _layout(campaign, request.GET)
        row0 = _int(request.GET.get("r0", 0), "r0")
        row1 = _int(request.GET.get("r1", row0 + layout.rows_per_window), "r1")
        cells = window(campaign, layout, row0, row1)
    except LayoutError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"cells": cells})


@require_POST
@login_only
def matrix_decide(request, pk):
    campaign = visible_campaign(request, pk)
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        return JsonResponse({"error": "send a JSON object"}, status=400)
    action = str(body.get("action", ""))
    if not _may(request.user, campaign, action):
        return JsonResponse({"error": "you may not do that to these cells"}, status=403)
    try:
        given = body.get("layout") or {}
        if not isinstance(given, dict):
            raise LayoutError("layout must be an object of rows, cols and at-<axis> values")
        layout = _layout(campaign, {str(k): str(v) for k, v in given.items()})
        if body.get("target") == "rejected":
            indexes = decisions.rejected_indexes(campaign)
        else:
            cells = body.get("cells") or []
            if not isinstance(cells, list) or len(cells) > campaign.cell_count:
                raise LayoutError("cells must be a list of cell numbers")
            indexes = decisions.target_indexes(
                layout,
                cells=[_int(i, "a cell") for i in cells],
                row=None if body.get("row") is None else _int(body["row"], "row"),
                col=None if body.get("col") is None else _int(body["col"], "column"),
            )
        tags = body.get("tags") or []
        if not isinstance(tags, list):
            raise LayoutError("tags must be a list")
        done, problems = decisions.decide(
            campaign,
            indexes,
            action,
            actor=request.user,
            reason=str(body.get("reason", ""))[:2000],
            tags=[str(t) for t in tags],
        )
    except (LayoutError, DecisionRefused) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except PermissionDenied:
        return JsonResponse({"error": "you may not decide on these cells"}, status=403)
    return JsonResponse({"done": done, "problems": problems[:50]})
