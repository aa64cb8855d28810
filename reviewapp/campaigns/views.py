"""Campaign pages: the list, a new campaign (plan, check, preview), and a campaign's page
with its live figures and the controls that steer it."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from comfybridge.errors import ContractError
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Upload
from reviewapp.briefs.services import NotPublished
from reviewapp.briefs.templatetags.briefs import param_rows
from reviewapp.campaigns import export, plans, services, stats
from reviewapp.campaigns.forms import LimitsForm, OptionsForm, builder_rows, read_plan
from reviewapp.campaigns.models import Campaign
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.lib.filters import FilterForm

PREVIEW_CELLS = 12


def can_see_campaigns(user) -> bool:
    return permissions.can_submit(user) or permissions.sees_everything(user)


@require(can_see_campaigns)
def campaign_list(request):
    campaigns = Campaign.objects.visible_to(request.user).select_related(
        "workflow_version__workflow", "created_by"
    )
    form = FilterForm(request.GET)
    if not form.is_valid():
        campaigns = campaigns.none()
    page = Paginator(campaigns, 25).get_page(form.page_number())
    rows = [(campaign, stats.status_counts(campaign)) for campaign in page]
    return render(
        request,
        "campaigns/campaign_list.html",
        {"page": page, "rows": rows, "problems": form.problems()},
        status=200 if form.is_valid() else 400,
    )


@require(permissions.can_submit)
def campaign_new(request, slug):
    version = get_object_or_404(
        WorkflowVersion.objects.select_related("workflow"),
        workflow__slug=slug,
        status=WorkflowVersion.Status.PUBLISHED,
    )
    try:
        contract = version.contract()
        builder_rows(contract)
    except (ContractError, ValueError):
        # Only a version stored before the import checks it now fails can get here.
        messages.error(
            request,
            f"{version} cannot take campaigns: its schema does not pass today's checks. "
            "Ask a workflow admin to import a corrected version.",
        )
        return redirect("workflow_list")
    problems: list[str] = []
    total = 0
    if request.method == "POST":
        form = OptionsForm(request.POST)
        rows = builder_rows(contract, request.POST)
        if form.is_valid():
            try:
                plan, prepared, spec = read_plan(
                    form.cleaned_data["plan_kind"], contract, request.POST, request.FILES
                )
                options = _merged(form.options(), services.Options.from_spec(spec))
                campaign = services.create_draft(
                    version, plan, actor=request.user, options=options, files=prepared
                )
            except plans.PlanInvalid as exc:
                problems, total = exc.problems, exc.total
            except NotPublished as exc:
                problems, total = [str(exc)], 1
            else:
                return redirect("campaign_detail", pk=campaign.pk)
    else:
        form = OptionsForm()
        rows = builder_rows(contract)
    workflow = version.workflow
    return render(
        request,
        "campaigns/campaign_new.html",
        {
            "version": version,
            "form": form,
            "rows": rows,
            "problems": problems,
            "more_problems": max(0, total - len(problems)),
            "defaults": {
                "min_decided": workflow.campaign_breaker_min_decided,
                "reject_pct": round(workflow.campaign_breaker_max_reject_rate * 100),
            },
            "max_cells": settings.CAMPAIGN_MAX_CELLS,
        },
        status=400 if problems or form.errors else 200,
    )


def _merged(chosen: services.Options, from_file: services.Options) -> services.Options:
    """The page's choices, falling back to what a matrix file says, field by field."""
    empty = services.Options()
    values = {}
    for f in dataclasses.fields(services.Options):
        mine = getattr(chosen, f.name)
        values[f.name] = mine if mine != getattr(empty, f.name) else getattr(from_file, f.name)
    return services.Options(**values)


def visible_campaign(request, pk) -> Campaign:
    campaign = get_object_or_404(
        Campaign.objects.select_related("workflow_version__workflow", "created_by"), pk=pk
    )
    if not permissions.can_view_campaign(request.user, campaign):
        raise Http404
    return campaign


@login_only
def campaign_detail(request, pk):
    campaign = visible_campaign(request, pk)
    context = {
        "campaign": campaign,
        "can_steer": permissions.can_steer_campaign(request.user, campaign),
        "axes": plans.axis_names(campaign.plan),
        "count_text": plans.describe_count(campaign.plan),
    }
    if campaign.status == Campaign.Status.DRAFT:
        cells = []
        for cell in plans.expand(campaign.plan):
            if len(cells) == PREVIEW_CELLS:
                break
            cells.append(cell)
        context.update(
            {
                **_preview(campaign, cells),
                "estimate": stats.estimate(campaign.workflow_version, campaign.cell_count),
                "is_owner": campaign.created_by_id == request.user.pk,
            }
        )
        return render(request, "campaigns/campaign_draft.html", context)
    progress = stats.progress(campaign)
    context.update(
        {
            "progress": progress,
            "finished": campaign.status == Campaign.Status.RUNNING and not progress.remaining,
            "figures": stats.decided(stats.lane_generations(campaign)),
            "unsettled": export.not_yet_settled(campaign),
            "limits_form": LimitsForm(
                initial={
                    "breaker_min_decided": campaign.breaker_min_decided,
                    "breaker_max_reject_pct": round(campaign.breaker_max_reject_rate * 100, 1),
                    "gpu_budget_s": campaign.gpu_budget_s,
                }
            ),
        }
    )
    return render(request, "campaigns/campaign_detail.html", context)


def _preview(campaign: Campaign, cells) -> dict:
    """The first cells as the draft page shows them: what every cell shares once, and
    per cell where it sits and what differs; images by the names they were given."""
    version = campaign.workflow_version
    contract = version.contract()
    cells = plans.checked(cells, contract)
    images = set(contract.image_properties())
    originals = dict(
        Upload.objects.filter(file__in=plans.stored_files(campaign.plan, images)).values_list(
            "file", "original_name"
        )
    )

    def shown(params):
        named = {k: originals.get(v, v) if k in images else v for k, v in params.items()}
        return param_rows(named, version.schema)

    varying = plans.varying_params(campaign.plan)
    first = cells[0].params if cells else {}
    return {
        "same": shown({k: v for k, v in first.items() if k not in varying}),
        "preview": [
            (
                cell,
                plans.in_plan_order(campaign.plan, cell.coords, cell.metadata),
                shown({k: v for k, v in cell.params.items() if k in varying}),
            )
            for cell in cells
        ],
        "more": campaign.cell_count - len(cells),
    }


@require_GET
@login_only
def campaign_status(request, pk):
    campaign = visible_campaign(request, pk)
    progress = stats.progress(campaign)
    figures = stats.decided(stats.lane_generations(campaign))
    return JsonResponse(
        {
            "status": campaign.status,
            "status_label": campaign.get_status_display(),
            "pause_reason": campaign.pause_reason,
            "in_canary": campaign.in_canary,
            "decided": figures.decided,
            "rejected": figures.rejected,
            **progress.as_json(),
        }
    )


def _steer(request, pk, action, done: str):
    campaign = visible_campaign(request, pk)
    if not permissions.can_steer_campaign(request.user, campaign):
        raise PermissionDenied
    try:
        action(campaign)
    except PermissionDenied:
        raise
    except (plans.PlanInvalid, NotPublished) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("campaign_detail", pk=campaign.pk)


@require_POST
@login_only
def campaign_submit(request, pk):
    return _steer(
        request,
        pk,
        lambda c: services.submit(c, actor=request.user),
        "Submitted: the cells are on their way to the backends.",
    )


@require_POST
@login_only
def campaign_pause(request, pk):
    reason = request.POST.get("reason", "").strip()[:500]
    return _steer(
        request,
        pk,
        lambda c: services.pause(c, actor=request.user, reason=reason),
        "Paused: no more cells go to the backends; those already running finish.",
    )


@require_POST
@login_only
def campaign_resume(request, pk):
    return _steer(request, pk, lambda c: services.resume(c, actor=request.user), "Resumed.")


@require_POST
@login_only
def campaign_cancel(request, pk):
    return _steer(
        request,
        pk,
        lambda c: services.cancel(c, actor=request.user),
        "Cancelled: nothing more of this campaign will run.",
    )


@require_POST
@login_only
def campaign_limits(request, pk):
    form = LimitsForm(request.POST)
    if not form.is_valid():
        campaign = visible_campaign(request, pk)
        if not permissions.can_steer_campaign(request.user, campaign):
            raise PermissionDenied
        errors = "; ".join(f"{form.fields[k].label}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Not changed: {errors}")
        return redirect("campaign_detail", pk=campaign.pk)
    return _steer(
        request,
        pk,
        lambda c: services.change_limits(c, actor=request.user, options=form.options()),
        "Limits changed.",
    )


@require_GET
@login_only
def campaign_export(request, pk):
    """The approved set as a ZIP with its manifest, streamed (see export.py)."""
    campaign = visible_campaign(request, pk)
    record(
        actions.CAMPAIGN_EXPORTED,
        actor=request.user,
        target=campaign,
        workflow_slug=campaign.workflow.slug,
        changes={"renditions": [r["name"] for r in campaign.renditions]},
    )
    response = StreamingHttpResponse(export.stream(campaign), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-approved.zip"'
    return response
