"""Every state change of a campaign goes through these functions.

A campaign is drafted (its plan read, every cell checked, its input images stored once),
then submitted: one transaction creates every brief, generation (held, in the campaign's
lane), cell and audit event in bulk; the scheduler releases the cells into the pool's
queue a few at a time. Pause takes back the cells still waiting in the queue (no backend
has seen them); resume lets the scheduler release again; cancel stops everything left.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from reviewapp.accounts import permissions
from reviewapp.audit import actions
from reviewapp.audit.services import record, record_many
from reviewapp.briefs.models import Generation, Upload
from reviewapp.briefs.services import (
    NotCancellable,
    cancel_generation,
    refuse_unless_published,
    submit_held,
)
from reviewapp.briefs.worker.enqueue import drop_job
from reviewapp.campaigns import plans
from reviewapp.campaigns.models import Campaign, Cell
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.lib import images

RENDITION_FORMATS = ("jpeg", "png", "webp")


@dataclass
class Options:
    """What an operator chooses besides the plan; None takes the workflow's default."""

    title: str = ""
    canary_size: int = 0
    breaker_min_decided: int | None = None
    breaker_max_reject_rate: float | None = None
    gpu_budget_s: float | None = None
    renditions: list = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: dict) -> Options:
        """The options a matrix file may carry beside its axes: title, canary, breaker
        {min_decided, max_reject_rate}, gpu_budget_s, renditions."""
        problems = []

        def number(value, name, kind):
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"'{name}' must be a number")
                return None
            if kind is int and not float(value).is_integer():
                problems.append(f"'{name}' must be a whole number")
                return None
            return kind(value)

        breaker = spec.get("breaker") or {}
        if not isinstance(breaker, dict):
            problems.append("'breaker' must be an object with min_decided and max_reject_rate")
            breaker = {}
        options = cls(
            title=str(spec.get("title") or "")[:200],
            canary_size=number(spec.get("canary"), "canary", int) or 0,
            breaker_min_decided=number(breaker.get("min_decided"), "breaker.min_decided", int),
            breaker_max_reject_rate=number(
                breaker.get("max_reject_rate"), "breaker.max_reject_rate", float
            ),
            gpu_budget_s=number(spec.get("gpu_budget_s"), "gpu_budget_s", float),
            renditions=spec.get("renditions") or [],
        )
        if problems:
            raise plans.PlanInvalid(problems)
        return options


def _refuse_unless_operator(actor) -> None:
    if not permissions.can_submit(actor):
        raise PermissionDenied("only operators make campaigns")


def _refuse_unless_steering(actor, campaign: Campaign) -> None:
    if not permissions.can_steer_campaign(actor, campaign):
        raise PermissionDenied("you may not change this campaign")


def clean_renditions(given) -> list[dict]:
    """[{"name", "width", "height", "format"}], each checked; raises PlanInvalid."""
    if not given:
        return []
    if not isinstance(given, list):
        raise plans.PlanInvalid(["'renditions' must be a list"])
    out, problems, names = [], [], set()
    for number, item in enumerate(given, 1):
        where = f"rendition {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object with name, width, height, format")
            continue
        name = str(item.get("name") or "").strip()
        width, height = item.get("width"), item.get("height")
        fmt = str(item.get("format", "png")).lower().replace("jpg", "jpeg")
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
            problems.append(f"{where}: 'name' must be letters, digits, - or _ (at most 40)")
        elif name in names:
            problems.append(f"{where}: {name!r} appears twice")
        for label, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or isinstance(value, bool) or not 16 <= value <= 8192:
                problems.append(f"{where}: '{label}' must be a whole number from 16 to 8192")
        if fmt not in RENDITION_FORMATS:
            problems.append(f"{where}: 'format' must be one of {', '.join(RENDITION_FORMATS)}")
        names.add(name)
        out.append({"name": name, "width": width, "height": height, "format": fmt})
    if problems:
        raise plans.PlanInvalid(problems)
    return out


def _limits(version: WorkflowVersion, options: Options) -> dict:
    workflow = version.workflow
    rate = options.breaker_max_reject_rate
    if rate is None:
        rate = workflow.campaign_breaker_max_reject_rate
    minimum = options.breaker_min_decided
    if minimum is None:
        minimum = workflow.campaign_breaker_min_decided
    problems = []
    if not 0 <= rate <= 1:
        problems.append("the breaker's reject rate must be between 0 and 1 (0.5 is 50%)")
    if minimum < 1:
        problems.append("the breaker needs at least 1 decided cell")
    if options.gpu_budget_s is not None and options.gpu_budget_s <= 0:
        problems.append("the GPU budget must be more than 0 seconds")
    if options.canary_size < 0:
        problems.append("the canary cannot be negative")
    if problems:
        raise plans.PlanInvalid(problems)
    return {"breaker_min_decided": minimum, "breaker_max_reject_rate": rate}


@transaction.atomic
def create_draft(
    version: WorkflowVersion,
    plan: dict,
    *,
    actor,
    options: Options,
    files: dict[str, images.PreparedImage] | None = None,
) -> Campaign:
    """Check every cell of `plan` (plans.matrix_plan / rows_plan) against the version's
    contract, store the input images it names (once each, however many cells use them)
    and keep the campaign as a draft. Raises plans.PlanInvalid naming cells and fields."""
    _refuse_unless_operator(actor)
    refuse_unless_published(version)
    plans.check_size(plan, settings.CAMPAIGN_MAX_CELLS)
    contract = version.contract()
    plans.checked(plans.expand(plan), contract)
    if options.canary_size >= plans.cell_count(plan) and options.canary_size:
        raise plans.PlanInvalid(
            [f"the canary ({options.canary_size}) must be smaller than the campaign"]
        )
    limits = _limits(version, options)
    renditions = clean_renditions(options.renditions)
    stored = _store_files(plans.referenced_files(plan), files or {})
    plan = plans.with_stored_files(plan, stored.__getitem__)
    title = (options.title or "").strip()[:200] or f"{version.workflow.title} campaign"
    return Campaign.objects.create(
        title=title,
        workflow_version=version,
        pool=version.workflow.pool,
        kind=plan["kind"],
        plan=plan,
        cell_count=plans.cell_count(plan),
        canary_size=options.canary_size,
        gpu_budget_s=options.gpu_budget_s,
        renditions=renditions,
        created_by=actor,
        **limits,
    )


def _store_files(names: set[str], files: dict[str, images.PreparedImage]) -> dict[str, str]:
    """Each file stored once, under the hash of its re-encoded bytes (what the backend
    receives); bytes already stored (an earlier brief's or campaign's) are not stored
    again. An Upload row per name keeps the name the operator gave it."""
    stored = {}
    for name in sorted(names):
        prepared = files[name]
        upload = Upload(property_name="", sha256=prepared.sha256, original_name=name[:255])
        earlier = Upload.objects.filter(sha256=prepared.sha256).exclude(file="").first()
        if earlier is not None and default_storage.exists(earlier.file.name):
            upload.file.name = earlier.file.name
        else:
            upload.file.save(f"{prepared.sha256[:16]}.png", ContentFile(prepared.data), save=False)
        upload.save()
        stored[name] = upload.file.name
    return stored


@transaction.atomic
def submit(campaign: Campaign, *, actor) -> Campaign:
    """Create every cell of a draft (brief, held generation, audit event) in bulk, and
    leave them held: the scheduler (scheduler.py) releases them into the pool's queue."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.created_by_id != actor.pk:
        raise PermissionDenied("only the operator who drafted a campaign submits it")
    _refuse_unless_operator(actor)
    if campaign.status != Campaign.Status.DRAFT:
        return campaign  # submitted already (a second click)
    version = campaign.workflow_version
    contract = version.contract()
    cells = plans.checked(plans.expand(campaign.plan), contract)
    now = timezone.now()
    campaign.move(Campaign.Status.RUNNING)
    campaign.submitted_at = campaign.breaker_since = now
    campaign.save()
    generations = submit_held(
        version,
        [cell.params for cell in cells],
        actor=actor,
        lane=campaign.lane,
        audit=[
            {"campaign": campaign.pk, "cell": cell.index, "params": cell.params} for cell in cells
        ],
    )
    Cell.objects.bulk_create(
        [
            Cell(
                campaign=campaign,
                index=cell.index,
                brief_id=generation.brief_id,
                coords=cell.coords,
                metadata=cell.metadata,
            )
            for cell, generation in zip(cells, generations, strict=True)
        ],
        batch_size=500,
    )
    record(
        actions.CAMPAIGN_SUBMITTED,
        actor=actor,
        target=campaign,
        workflow_slug=version.workflow.slug,
        changes={
            "version": version.number,
            "cells": len(cells),
            "kind": campaign.kind,
            "axes": plans.axis_names(campaign.plan),
            "canary": campaign.canary_size,
            "breaker": [campaign.breaker_min_decided, campaign.breaker_max_reject_rate],
            "gpu_budget_s": campaign.gpu_budget_s,
        },
    )
    return campaign


def _locked(campaign: Campaign) -> Campaign:
    return (
        Campaign.objects.select_for_update()
        .select_related("workflow_version__workflow")
        .get(pk=campaign.pk)
    )


@transaction.atomic
def pause(
    campaign: Campaign,
    *,
    actor,
    reason: str = "",
    figures: dict | None = None,
    kind: str = Campaign.PauseKind.OPERATOR,
) -> Campaign:
    """Stop releasing cells, and take back those waiting in the queue that no backend has
    seen (their jobs leave the RQ queue; their queue deadline starts again on release).
    Cells already on a backend finish. `actor` None: the guard paused it (`kind` says
    which limit). A campaign that is not running (paused, cancelled meanwhile, a draft)
    is left as it is."""
    campaign = _locked(campaign)
    if actor is not None:
        _refuse_unless_steering(actor, campaign)
    if campaign.status != Campaign.Status.RUNNING:
        return campaign
    campaign.move(Campaign.Status.PAUSED)
    campaign.pause_kind = kind
    campaign.pause_reason = (reason or "paused by its operator").strip()[:500]
    campaign.paused_at = timezone.now()
    campaign.save()
    waiting = Generation.objects.filter(
        lane=campaign.lane, status=Generation.Status.QUEUED, prompt_id=None
    )
    taken = []
    for generation in waiting.select_for_update():
        generation.mark_held()
        generation.save(update_fields=["status", "queue_deadline", "waiting_reason", "updated_at"])
        taken.append(generation)
    slug = campaign.workflow.slug
    record_many(
        actions.GENERATION_PUT_BACK,
        actor=actor,
        items=((g, {"campaign": campaign.pk}) for g in taken),
        workflow_slug=slug,
    )
    record(
        actions.CAMPAIGN_PAUSED,
        actor=actor,
        target=campaign,
        workflow_slug=slug,
        changes={
            "reason": campaign.pause_reason,
            "kind": campaign.pause_kind,
            "put_back": len(taken),
            **(figures or {}),
        },
    )
    for generation in taken:
        transaction.on_commit(partial(drop_job, generation.pk, generation.pool), robust=True)
    return campaign


@transaction.atomic
def resume(campaign: Campaign, *, actor) -> Campaign:
    """Let the scheduler release again. The breaker counts decisions from now on: the
    figures that paused it do not pause it again at once."""
    campaign = _locked(campaign)
    _refuse_unless_steering(actor, campaign)
    if campaign.status == Campaign.Status.RUNNING:
        return campaign
    if campaign.status != Campaign.Status.PAUSED:
        raise plans.PlanInvalid(
            [f"a {campaign.get_status_display().lower()} campaign cannot resume"]
        )
    campaign.move(Campaign.Status.RUNNING)
    reason, kind = campaign.pause_reason, campaign.pause_kind
    campaign.pause_reason = campaign.pause_kind = ""
    campaign.paused_at = None
    campaign.breaker_since = timezone.now()
    if campaign.in_canary and kind == Campaign.PauseKind.CANARY:
        # The canary failed its review; whoever resumes has looked and goes on.
        campaign.canary_passed_at = campaign.breaker_since
    campaign.save()
    record(
        actions.CAMPAIGN_RESUMED,
        actor=actor,
        target=campaign,
        workflow_slug=campaign.workflow.slug,
        changes={"was_paused_for": reason, "kind": kind},
    )
    return campaign


@transaction.atomic
def cancel(campaign: Campaign, *, actor) -> Campaign:
    """Stop the campaign: held cells end cancelled, queued ones leave the queue, running
    ones are interrupted on their backend (targeted). Decided images stay as they are."""
    campaign = _locked(campaign)
    _refuse_unless_steering(actor, campaign)
    if campaign.status == Campaign.Status.CANCELLED:
        return campaign
    old = campaign.move(Campaign.Status.CANCELLED)
    campaign.save()
    now = timezone.now()
    held = list(
        Generation.objects.filter(lane=campaign.lane, status=Generation.Status.HELD)
        .select_for_update()
        .values_list("pk", flat=True)
    )
    Generation.objects.filter(pk__in=held, status=Generation.Status.HELD).update(
        status=Generation.Status.CANCELLED, finished_at=now, updated_at=now
    )
    slug = campaign.workflow.slug
    record_many(
        actions.GENERATION_CANCELLED,
        actor=actor,
        items=((Generation(pk=pk), {"status": ["held", "cancelled"]}) for pk in held),
        workflow_slug=slug,
    )
    active = Generation.objects.filter(lane=campaign.lane, status__in=Generation.ACTIVE)
    for generation in active:
        # One that finished since it was listed keeps its image, to be reviewed.
        with contextlib.suppress(NotCancellable):
            cancel_generation(generation, actor=actor)
    record(
        actions.CAMPAIGN_CANCELLED,
        actor=actor,
        target=campaign,
        workflow_slug=slug,
        changes={"status": [old, campaign.status], "held_cancelled": len(held)},
    )
    return campaign


@transaction.atomic
def change_limits(campaign: Campaign, *, actor, options: Options) -> Campaign:
    """New breaker figures or budget, e.g. before resuming a campaign they paused."""
    campaign = _locked(campaign)
    _refuse_unless_steering(actor, campaign)
    limits = _limits(campaign.workflow_version, options)
    before = {
        "breaker_min_decided": campaign.breaker_min_decided,
        "breaker_max_reject_rate": campaign.breaker_max_reject_rate,
        "gpu_budget_s": campaign.gpu_budget_s,
    }
    campaign.breaker_min_decided = limits["breaker_min_decided"]
    campaign.breaker_max_reject_rate = limits["breaker_max_reject_rate"]
    campaign.gpu_budget_s = options.gpu_budget_s
    changes = {
        name: [old, getattr(campaign, name)]
        for name, old in before.items()
        if old != getattr(campaign, name)
    }
    if changes:
        campaign.save()
        record(
            actions.CAMPAIGN_CHANGED,
            actor=actor,
            target=campaign,
            workflow_slug=campaign.workflow.slug,
            changes=changes,
        )
    return campaign
