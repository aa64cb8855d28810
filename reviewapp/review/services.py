"""Review decisions. Each is atomic, checks permission, and writes its audit event."""

from __future__ import annotations

import random

from django.core.exceptions import PermissionDenied
from django.db import transaction

from reviewapp.accounts import permissions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.briefs.services import create_child_generation
from reviewapp.review.models import Decision

SEED_MAX = 2147483647


class DecisionRefused(Exception):
    """The generation is not in a state that allows this decision."""


def has_seed(generation: Generation) -> bool:
    """Whether the workflow takes a seed (a model-free one may not: it just runs again)."""
    return "seed" in generation.brief.workflow_version.schema.get("properties", {})


def new_seed(old: int | None) -> int:
    seed = old
    while seed == old:
        seed = random.randint(0, SEED_MAX)
    return seed


def _locked(generation: Generation) -> Generation:
    return (
        Generation.objects.select_for_update()
        .select_related("brief__workflow_version__workflow")
        .get(pk=generation.pk)
    )


def _decide(generation, action, *, actor, reason="") -> Decision:
    locked = _locked(generation)
    if not permissions.can_decide(actor, locked):
        raise PermissionDenied("you may not decide on this generation")
    done_status = {
        Decision.Action.APPROVE: Generation.Status.APPROVED,
        Decision.Action.REJECT: Generation.Status.REJECTED,
    }[action]
    if locked.status == done_status:
        # A double submit (or a second click) is not a second decision.
        return locked.decisions.filter(action=action).first()
    if locked.status not in Generation.DECIDABLE:
        raise DecisionRefused(
            f"{locked} is {locked.get_status_display().lower()}; "
            "only images awaiting review can be decided"
        )
    old = locked.status
    if action == Decision.Action.APPROVE:
        locked.mark_approved()
    else:
        locked.mark_rejected()
    locked.save()
    decision = Decision.objects.create(generation=locked, action=action, reason=reason, actor=actor)
    record(
        f"generation.{locked.status}",
        actor=actor,
        target=locked,
        workflow_slug=locked.brief.workflow_version.workflow.slug,
        changes={"status": [old, locked.status], **({"reason": reason} if reason else {})},
    )
    return decision


@transaction.atomic
def approve(generation: Generation, *, actor) -> Decision:
    return _decide(generation, Decision.Action.APPROVE, actor=actor)


@transaction.atomic
def reject(generation: Generation, *, actor, reason: str) -> Decision:
    reason = (reason or "").strip()
    if not reason:
        raise DecisionRefused("a rejection needs a reason")
    return _decide(generation, Decision.Action.REJECT, actor=actor, reason=reason)


@transaction.atomic
def regenerate(generation: Generation, *, actor, params: dict | None = None) -> Generation:
    """A child generation: the same parameters with a new seed, or edited parameters."""
    locked = _locked(generation)
    if not permissions.can_regenerate(actor, locked):
        raise PermissionDenied("you may not regenerate this generation")
    if locked.status not in Generation.REGENERABLE:
        raise DecisionRefused(f"{locked} is still {locked.get_status_display().lower()}")
    if params is None:
        params = dict(locked.params)
        if has_seed(locked):
            params["seed"] = new_seed(locked.params.get("seed"))
    child = create_child_generation(locked, params, actor=actor)
    Decision.objects.create(
        generation=locked, action=Decision.Action.REGENERATE, child=child, actor=actor
    )
    return child
