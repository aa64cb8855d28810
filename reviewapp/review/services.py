"""Review decisions. Each is atomic, checks permission, and writes its audit event.

The rules, in one place:
- approve / reject end the review (the last of N approvals ends it); regenerating an
  image that awaits review ends it too, as a rejection with the reason "regenerated"
  linking the child; regenerating a decided or failed one ("run again") changes nothing
  on it.
- A decision on an image another reviewer holds (claims.py) is refused with their name.
- A reviewer may undo their own last decision within DECISION_UNDO_S: a new `undo` row
  marks it reversed, and an image whose review it ended awaits review again (a
  regenerate's child is cancelled, if it has not started).

Every decision takes an optional idempotency key (sent with the form that made it):
the same key twice returns the first result instead of deciding twice. The key is looked
up only after the permission check, and only answers for the decision it made.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from reviewapp.accounts import permissions
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.briefs.services import cancel_generation, create_child_generation
from reviewapp.review import claims
from reviewapp.review.errors import DecisionRefused
from reviewapp.review.models import Decision
from reviewapp.review.reasons import clean_reason_and_tags

# The reason recorded when a regenerate ends an image's review.
REGENERATED = "regenerated"

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
    if done.is_reversed:
        raise DecisionRefused("this form's decision was undone; reload the page to decide again")
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


def _standing(generation: Generation, action: str):
    return generation.decisions.filter(action=action, reversed_by__isnull=True)


def _refuse_unless_awaiting(locked: Generation) -> None:
    if locked.status not in Generation.DECIDABLE:
        raise DecisionRefused(
            f"{locked} is {locked.get_status_display().lower()}; "
            "only images awaiting review can be decided"
        )


def counted_approvals(generation: Generation) -> int:
    """Standing approvals from distinct non-authors: one given before someone became an
    author (or while ALLOW_SELF_REVIEW was on) is not a second pair of eyes now, and
    one that was undone is none at all."""
    approvals = _standing(generation, Decision.Action.APPROVE)
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
    mine = _standing(locked, Decision.Action.APPROVE).filter(actor=actor).first()
    if mine is not None and locked.status != Generation.Status.REJECTED:
        return mine  # a second click is not a second approval
    _refuse_unless_awaiting(locked)
    claims.refuse_if_held_by_other(locked, actor)
    # can_decide held, so this approval counts: it is the one after those standing.
    approvals = counted_approvals(locked) + 1
    needed = approvals_needed(locked)
    decision = _create_decision(
        generation=locked,
        action=Decision.Action.APPROVE,
        actor=actor,
        idempotency_key=key,
        ended_review=approvals >= needed,
    )
    old = locked.status
    if decision.ended_review:
        locked.mark_approved(at=decision.created_at)
        locked.save()
    claims.end(locked)
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
        existing = _standing(locked, Decision.Action.REJECT).first()
        if existing is not None and existing.actor_id == actor.pk:
            return existing
    _refuse_unless_awaiting(locked)
    claims.refuse_if_held_by_other(locked, actor)
    old = locked.status
    decision = _create_decision(
        generation=locked,
        action=Decision.Action.REJECT,
        reason=reason,
        tags=tags,
        actor=actor,
        idempotency_key=key,
        ended_review=True,
    )
    locked.mark_rejected(at=decision.created_at)
    locked.save()
    claims.end(locked)
    _audit(locked, actor, old, reason=reason, tags=tags)
    return decision


@transaction.atomic
def regenerate(
    generation: Generation,
    *,
    actor,
    params: dict | None = None,
    key: uuid.UUID | None = None,
    hold: bool = False,
) -> Generation:
    """A child generation: the same parameters with a new seed, or edited parameters
    (validated again against the version the brief pinned).

    On an image awaiting review this is its decision: it is rejected with the reason
    "regenerated", its pending approvals end with it (named in the audit event), and
    the child takes its place in the queue once it has run. A decided or failed image
    is run again and keeps its status. `hold`: the child waits for its campaign's
    scheduler (a bulk regenerate of a campaign's cells) instead of joining the queue."""
    locked = _locked(generation)
    if not permissions.can_regenerate(actor, locked):
        raise PermissionDenied("you may not regenerate this generation")
    if (done := _replay(key, locked, Decision.Action.REGENERATE, actor)) is not None:
        if done.child is None:
            raise DecisionRefused("the generation this form made is gone")
        return done.child
    if locked.status not in Generation.REGENERABLE:
        raise DecisionRefused(f"{locked} is still {locked.get_status_display().lower()}")
    ends_review = locked.status in Generation.DECIDABLE
    if ends_review:
        # Then it is the image's decision: for a reviewer who may make it (four eyes).
        if not permissions.can_decide(actor, locked):
            raise DecisionRefused(
                f"{locked} awaits review: regenerating it now would decide on it, which "
                "is for another reviewer; run it again once it is decided"
            )
        claims.refuse_if_held_by_other(locked, actor)
    if params is None:
        params = dict(locked.params)
        if has_seed(locked):
            params["seed"] = new_seed(locked.params.get("seed"))
    child = create_child_generation(locked, params, actor=actor, hold=hold)
    changes = {
        name: [locked.params.get(name), value]
        for name, value in child.params.items()
        if locked.params.get(name) != value
    }
    decision = _create_decision(
        generation=locked,
        action=Decision.Action.REGENERATE,
        reason=REGENERATED if ends_review else "",
        changes=changes,
        child=child,
        actor=actor,
        idempotency_key=key,
        ended_review=ends_review,
    )
    if ends_review:
        pending = list(
            _standing(locked, Decision.Action.APPROVE)
            .order_by("created_at", "id")
            .values_list("actor__username", flat=True)
        )
        old = locked.status
        locked.mark_rejected(at=decision.created_at)
        locked.save()
        claims.end(locked)
        _audit(
            locked,
            actor,
            old,
            reason=REGENERATED,
            child=child.pk,
            changed=changes,
            ended_approvals=pending,
        )
    return child


def _standing_decisions_of(actor):
    """The actor's decisions that stand (an undo is not a decision), newest first: the
    (actor, -created_at, -id) index serves it."""
    return (
        Decision.objects.filter(actor=actor, reversed_by__isnull=True)
        .exclude(action=Decision.Action.UNDO)
        .order_by("-created_at", "-id")
    )


def last_decision(actor) -> Decision | None:
    return _standing_decisions_of(actor).first()


def undo_seconds_left(decision: Decision) -> float:
    elapsed = (timezone.now() - decision.created_at).total_seconds()
    return settings.DECISION_UNDO_S - elapsed


def undoable(actor) -> Decision | None:
    """The decision `actor` may still undo (their last, inside the window), if any:
    asked on every review page, so it reads only the window's few rows."""
    if not actor.is_authenticated:
        return None
    cutoff = timezone.now() - timedelta(seconds=settings.DECISION_UNDO_S)
    return _standing_decisions_of(actor).filter(created_at__gt=cutoff).first()


@transaction.atomic
def undo(decision: Decision, *, actor) -> Decision:
    """Reverse `actor`'s own last decision, within DECISION_UNDO_S of making it.

    Writes an `undo` decision that the reversed one points to (both stay); an image
    whose review the decision ended awaits review again (the one transition back,
    Generation.mark_reopened); a regenerate's child is cancelled, and refused if it has
    started. Only the latest decision on the image can be undone."""
    locked = _locked(decision.generation)
    decision = Decision.objects.select_for_update().get(pk=decision.pk)
    if decision.actor_id != actor.pk:
        raise PermissionDenied("only the reviewer who made a decision may undo it")
    if decision.action == Decision.Action.UNDO:
        raise DecisionRefused("an undo cannot be undone; decide again instead")
    if decision.reversed_by_id is not None:
        return Decision.objects.get(pk=decision.reversed_by_id)  # a double press
    last = last_decision(actor)
    if last is not None and last.pk != decision.pk:
        raise DecisionRefused(
            f"only your last decision can be undone; you have decided on {last.generation} since"
        )
    window = settings.DECISION_UNDO_S
    if undo_seconds_left(decision) <= 0:
        raise DecisionRefused(
            f"the {window}-second undo window has passed; decide on {locked} again instead"
        )
    after = Q(created_at__gt=decision.created_at) | Q(
        created_at=decision.created_at, id__gt=decision.pk
    )
    later = (
        locked.decisions.filter(after, reversed_by__isnull=True)
        .exclude(action=Decision.Action.UNDO)
        .select_related("actor")
        .first()
    )
    if later is not None:
        raise DecisionRefused(
            f"{later.actor.get_username()} has decided on {locked} since; "
            "your decision can no longer be undone"
        )
    extra = {}
    if decision.action == Decision.Action.REGENERATE and decision.child_id is not None:
        child = _locked(decision.child)
        # A child that never ran to an image (queued: cancelled now; cancelled or failed)
        # leaves nothing behind; one that is running or ran does.
        if child.status not in (
            Generation.Status.QUEUED,
            Generation.Status.CANCELLED,
            Generation.Status.FAILED,
        ):
            raise DecisionRefused(
                f"{child} has already started on a backend; decide on it when it is ready"
            )
        if child.status == Generation.Status.QUEUED:
            cancel_generation(child, actor=actor)
        extra["child_cancelled"] = child.pk
    reversal = Decision.objects.create(generation=locked, action=Decision.Action.UNDO, actor=actor)
    decision.reversed_by = reversal
    decision.save(update_fields=["reversed_by"])
    old = locked.status
    if decision.ended_review and locked.status in Generation.DECIDED:
        locked.mark_reopened()
        locked.save()
    record(
        actions.GENERATION_DECISION_REVERSED,
        actor=actor,
        target=locked,
        workflow_slug=locked.brief.workflow_version.workflow.slug,
        changes={
            "status": [old, locked.status],
            "reversed": {"decision": decision.pk, "action": decision.action},
            **extra,
        },
    )
    return reversal


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
