"""Claims: the reviewer who opens an image awaiting review holds it for a while.

Opening the image (its page) claims it for REVIEW_CLAIM_S; the open page renews the claim,
a decision or leaving the page releases it, and an unrenewed claim simply expires (an
expired row means nothing). While someone holds an image, other reviewers' "next" passes
it by, its page and the queue say who holds it, and their decisions on it are refused
with that name.

Claims live in the database, so every web process sees them, and are taken under the
generation's row lock, so two reviewers opening one image at the same moment cannot
both hold it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from reviewapp.accounts import permissions
from reviewapp.briefs.models import Generation
from reviewapp.review.errors import DecisionRefused
from reviewapp.review.models import Claim, Decision


def _expiry(now):
    return now + timedelta(seconds=settings.REVIEW_CLAIM_S)


def _take(locked: Generation, actor, *, token: uuid.UUID | None, fresh: bool, now) -> Claim | None:
    """Under the generation's row lock: the live claim after `actor` tried to hold it,
    theirs or another reviewer's. None when `actor` may not hold it at all."""
    if not may_decide_now(actor, locked):
        return None
    current = Claim.objects.filter(generation=locked).select_related("holder").first()
    if current is not None and current.holder_id != actor.pk and current.is_live(now):
        return current
    if current is None:
        return Claim.objects.create(
            generation=locked,
            holder=actor,
            token=token or uuid.uuid4(),
            claimed_at=now,
            expires_at=_expiry(now),
        )
    if current.holder_id != actor.pk or not current.is_live(now):
        current.holder, current.claimed_at = actor, now
        current.token = token or uuid.uuid4()
    elif fresh:
        current.token = token or uuid.uuid4()
    current.expires_at = _expiry(now)
    current.save()
    return current


def may_decide_now(actor, generation: Generation) -> bool:
    """Whether `actor` has a decision to make on `generation` now: it awaits review,
    they may decide on it (can_decide: role, four eyes), and no approval of theirs
    stands on it already (N-of-M waits for someone else). Only they may hold it; the
    queue's "next" asks the same (ReviewQueue._not_for_me)."""
    return (
        generation.status in Generation.DECIDABLE
        and permissions.can_decide(actor, generation)
        and not generation.decisions.filter(
            actor=actor, action=Decision.Action.APPROVE, reversed_by__isnull=True
        ).exists()
    )


def open_for_review(generation: Generation, *, actor) -> Claim | None:
    """The page of `generation` opened: hold it for `actor` (with a new token, see
    Claim.token) unless another reviewer does. Returns the live claim (whoever holds
    it), or None when `actor` has no decision to make on it (may_decide_now)."""
    if generation.status not in Generation.DECIDABLE:
        return None  # a plain read first: most pages opened are not awaiting review
    with transaction.atomic():
        locked = Generation.objects.for_update().get(pk=generation.pk)
        return _take(locked, actor, token=None, fresh=True, now=timezone.now())


@transaction.atomic
def renew(generation: Generation, *, actor, token: uuid.UUID | None) -> Claim | None:
    """The open page still shows it: extend `actor`'s hold, or take it back if it
    lapsed and nobody else took it. Returns the live claim, as open_for_review."""
    locked = Generation.objects.for_update().get(pk=generation.pk)
    return _take(locked, actor, token=token, fresh=False, now=timezone.now())


def release(generation: Generation, *, actor, token: uuid.UUID | None = None) -> bool:
    """`actor` left the page (or skipped the image): give it back. With a token, only
    the claim that page took is released, not one a newer page of theirs holds."""
    claims = Claim.objects.filter(generation_id=generation.pk, holder=actor)
    if token is not None:
        claims = claims.filter(token=token)
    return claims.delete()[0] > 0


def end(locked: Generation) -> None:
    """A decision was made: nobody holds the image any more. Inside its transaction."""
    Claim.objects.filter(generation=locked).delete()


def live_claim(generation: Generation) -> Claim | None:
    claim = Claim.objects.filter(generation_id=generation.pk).select_related("holder").first()
    return claim if claim is not None and claim.is_live() else None


def refuse_if_held_by_other(locked: Generation, actor) -> None:
    """Raise DecisionRefused naming the reviewer who holds `locked`, unless that is
    `actor` or nobody. Called by every decision, under the generation's row lock."""
    claim = live_claim(locked)
    if claim is not None and claim.holder_id != actor.pk:
        raise DecisionRefused(
            f"{claim.holder.get_username()} is reviewing {locked} "
            f"(opened {claim.opened_ago} ago); pick another image"
        )


def held_by_others(user):
    """An Exists() over generations: someone other than `user` holds it now."""
    return Exists(
        Claim.objects.filter(generation=OuterRef("pk"), expires_at__gt=timezone.now()).exclude(
            holder=user
        )
    )


def holder_name():
    """An annotation over generations: the username of whoever holds it now, or None."""
    live = Claim.objects.filter(generation=OuterRef("pk"), expires_at__gt=timezone.now())
    return Subquery(live.values("holder__username")[:1])
