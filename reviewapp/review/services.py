"""Review decisions. Each is atomic, checks permission, and writes its audit event.

Every decision takes an optional idempotency key (sent with the form that made it):
the same key twice returns the first result instead of deciding twice. The key is looked
up only after the permission check, and only answers for the decision it made.
"""

from __future__ import annotations

import random
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from reviewapp.accounts import permissions
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.briefs.services import create_child_generation
from reviewapp.review.errors import DecisionRefused
from reviewapp.review.models import Decision
from reviewapp.review.reasons import clean_reason_and_tags

SEED_MAX = 2147483647


def has_seed(generation: Generation) -> bool:
    """Whether the workflow takes a seed (a model-free one may not: it just runs again)."""
    return "seed" in generation.brief.workflow_version.schema.get("properties", {})


def new_seed(old: int | None) -> int:
    seed = old
    while seed == old:
        seed = random.randint(0, SEED_MAX)
    return seed


def _locked(generation: Generation) -> Generation:
    return Generation.objects.for_update().get(pk=generation.pk)


def _replay(key: uuid.UUID | None, locked: Generation, action: str, actor) -> Decision | None:
    """The decision this key already made, if it made this one.

    Asked only once permission is checked: a replayed key must not answer "done" to
    someone who may not decide. A key that made another decision (another action,
    generation or person: each form has its own key) is refused, never answered with
    the wrong object.
    """
    if key is None:
        return None
    done = Decision.objects.filter(idempotency_key=key).select_related("child").first()
    if done is None:
        return None
    if (done.generation_id, done.action, done.actor_id) != (locked.pk, action, actor.pk):
        raise DecisionRefused(
            "this form was already used for another decision; reload the page and try again"
        )
    return done


def _create_decision(**fields) -> Decision:
    # Two requests racing with one key: the second finds the key taken at insert time.
    try:
        with transaction.atomic():
            return Decision.objects.create(**fields)
    except IntegrityError:
        raise DecisionRefused(
            "this form was already submitted; reload the page to see the decision"
        ) from None


_DECIDED = {
    Generation.Status.APPROVED: actions.GENERATION_APPROVED,
    Generation.Status.REJECTED: actions.GENERATION_REJECTED,
}


def _audit(locked: Generation, actor, old_status: str, **extra) -> None:
    """The decision's event: approved or rejected, or one approval of several needed."""
    record(
        _DECIDED[locked.status] if locked.status != old_status else actions.GENERATION_APPROVAL,
        actor=actor,
        target=locked,
        workflow_slug=locked.brief.workflow_version.workflow.slug,
        changes={"status": [old_status, locked.status], **extra},
    )


def counted_approvals(generation: Generation) -> int:
    """Approvals from distinct non-authors: one given before someone became an author
    (or while ALLOW_SELF_REVIEW was on) is not a second pair of eyes now."""
    approvals = generation.decisions.filter(action=Decision.Action.APPROVE)
    if not settings.ALLOW_SELF_REVIEW:
        approvals = approvals.exclude(actor__in=generation.authors.all())
    return approvals.values("actor").distinct().count()


def approvals_needed(generation: Generation) -> int:
    return generation.brief.workflow_version.workflow.required_approvals


@transaction.atomic
def approve(generation: Generation, *, actor, key: uuid.UUID | None = None) -> Decision:
    """Record the reviewer's approval; the generation is approved once the workflow's
    number of distinct reviewers have approved it."""
    locked = _locked(generation)
    if not permissions.can_decide(actor, locked):
        raise PermissionDenied("you may not decide on this generation")
    if (done := _replay(key, locked, Decision.Action.APPROVE, actor)) is not None:
        return done
    mine = locked.decisions.filter(action=Decision.Action.APPROVE, actor=actor).first()
    if mine is not None:
        return mine  # a second click is not a second approval
    if locked.status not in Generation.DECIDABLE:
        raise DecisionRefused(
            f"{locked} is {locked.get_status_display().lower()}; "
            "only images awaiting review can be decided"
        )
    decision = _create_decision(
        generation=locked, action=Decision.Action.APPROVE, actor=actor, idempotency_key=key
    )
    approvals = counted_approvals(locked)
    needed = approvals_needed(locked)
    old = locked.status
    if approvals >= needed:
        locked.mark_approved()
        locked.save()
    _audit(locked, actor, old, approvals=f"{approvals}/{needed}")
    return decision


@transaction.atomic
def reject(
    generation: Generation,
    *,
    actor,
    reason: str = "",
    tags: list[str] | None = None,
    key: uuid.UUID | None = None,
) -> Decision:
    """Reject with a reason: one or more of the configured tags, free text, or both."""
    locked = _locked(generation)
    if not permissions.can_decide(actor, locked):
        raise PermissionDenied("you may not decide on this generation")
    if (done := _replay(key, locked, Decision.Action.REJECT, actor)) is not None:
        return done
    reason, tags = clean_reason_and_tags(reason, tags)
    if locked.status == Generation.Status.REJECTED:
        existing = locked.decisions.filter(action=Decision.Action.REJECT).first()
        if existing is not None and existing.actor_id == actor.pk:
            return existing
    if locked.status not in Generation.DECIDABLE:
        raise DecisionRefused(
            f"{locked} is {locked.get_status_display().lower()}; "
            "only images awaiting review can be decided"
        )
    old = locked.status
    locked.mark_rejected()
    locked.save()
    decision = _create_decision(
        generation=locked,
        action=Decision.Action.REJECT,
        reason=reason,
        tags=tags,
        actor=actor,
        idempotency_key=key,
    )
    _audit(locked, actor, old, reason=reason, tags=tags)
    return decision


@transaction.atomic
def regenerate(
    generation: Generation, *, actor, params: dict | None = None, key: uuid.UUID | None = None
) -> Generation:
    """A child generation: the same parameters with a new seed, or edited parameters
    (validated again against the version the brief pinned)."""
    locked = _locked(generation)
    if not permissions.can_regenerate(actor, locked):
        raise PermissionDenied("you may not regenerate this generation")
    if (done := _replay(key, locked, Decision.Action.REGENERATE, actor)) is not None:
        if done.child is None:
            raise DecisionRefused("the generation this form made is gone")
        return done.child
    if locked.status not in Generation.REGENERABLE:
        raise DecisionRefused(f"{locked} is still {locked.get_status_display().lower()}")
    if params is None:
        params = dict(locked.params)
        if has_seed(locked):
            params["seed"] = new_seed(locked.params.get("seed"))
    child = create_child_generation(locked, params, actor=actor)
    _create_decision(
        generation=locked,
        action=Decision.Action.REGENERATE,
        child=child,
        actor=actor,
        idempotency_key=key,
    )
    return child


def bulk_decide(
    generations, action: str, *, actor, reason: str = "", tags: list[str] | None = None
) -> tuple[list[Generation], list[str]]:
    """Approve or reject several generations, each in its own transaction and audit row.

    Returns (decided, problems); one refusal does not stop the others, but a reason
    that would be refused is refused once, before anything is decided.
    """
    if action not in ("approve", "reject"):
        return [], ["unknown bulk action: choose approve or reject"]
    if action == "reject":
        try:
            reason, tags = clean_reason_and_tags(reason, tags)
        except DecisionRefused as exc:
            return [], [str(exc)]
    decided, problems = [], []
    for generation in generations:
        try:
            if action == "approve":
                approve(generation, actor=actor)
            else:
                reject(generation, actor=actor, reason=reason, tags=tags)
        except (DecisionRefused, PermissionDenied) as exc:
            problems.append(f"#{generation.pk}: {exc or 'not allowed'}")
        else:
            decided.append(generation)
    return decided, problems
