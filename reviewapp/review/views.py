"""The review pages: the queue, "next", an image's page and the comparison. The POST
endpoints that decide (and claim) are in decide.py."""

import time
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.briefs import waiting
from reviewapp.briefs.models import Brief, Generation
from reviewapp.catalog.models import Workflow
from reviewapp.lib.redirects import safe_back
from reviewapp.review import claims, services
from reviewapp.review.lineage import lineage_tree, param_changes
from reviewapp.review.queue import (
    COUNT_CAP,
    PER_PAGE,
    CappedPaginator,
    Count,
    ReviewQueue,
    capped_count,
)


def in_queue(name: str, queue: ReviewQueue, *args):
    """The URL of `name` carrying the queue's filter and sort."""
    return queue.carry(reverse(name, args=args))


_UNDO_KEY = "review_undo"


def offer_undo(request, decision) -> None:
    """After a decision made in this session, its pages offer to undo it (the undo bar)
    until DECISION_UNDO_S has passed. Only an offer: services.undo checks the rules."""
    request.session[_UNDO_KEY] = [decision.pk, time.time() + settings.DECISION_UNDO_S]


def undo_context(request, rq: ReviewQueue | None) -> dict:
    """The undo bar: this session's last decision while it can still be undone. Costs
    nothing once the window has passed, one query within it."""
    offer = request.session.get(_UNDO_KEY)
    if not offer:
        return {}
    pk, deadline = offer
    decision = None
    if time.time() < deadline:
        decision = services.undoable(request.user)
    if decision is None or decision.pk != pk:
        del request.session[_UNDO_KEY]
        return {}
    url = reverse("decision_undo", args=[decision.pk])
    return {
        "undoable": decision,
        "undo_url": rq.carry(url) if rq else url,
        "undo_left_s": round(services.undo_seconds_left(decision), 1),
    }


@require(permissions.can_view_queue)
def queue(request):
    rq = ReviewQueue(request.user, request.GET)
    generations = (
        rq.items.select_related("brief__workflow_version__workflow", "brief__created_by")
        .prefetch_related("assets")
        .annotate(holder=claims.holder_name())
    )
    page_number = rq.form.page_number()
    paginator = CappedPaginator(generations, PER_PAGE, page_hint=page_number, counted=rq.items)
    page = paginator.get_page(page_number)
    page.object_list = list(page.object_list)
    waiting.attach_places(page.object_list)
    if rq.valid and not rq.form.is_filtered() and paginator.limit == COUNT_CAP:
        # Everything awaiting review, counted to the same cap: do not count it twice.
        awaiting = Count(paginator.count, paginator.more)
    else:
        awaiting = capped_count(Generation.objects.filter(status=Generation.Status.AWAITING_REVIEW))
    # One indexed lookup per user, not a DISTINCT over every generation.
    submitters = (
        get_user_model()
        .objects.filter(Exists(Brief.objects.filter(created_by=OuterRef("pk"))))
        .values_list("username", flat=True)
    )
    return render(
        request,
        "review/queue.html",
        {
            "page": page,
            "queue": rq,
            "link_query": rq.querystring,  # the cards' links keep the filter
            "filters": rq.form.raw(),
            "problems": rq.form.problems(),
            "statuses": Generation.Status.choices,
            "workflows": Workflow.objects.order_by("slug").values_list("slug", flat=True),
            "submitters": sorted(submitters),
            "awaiting": awaiting,
            "reject_tags": settings.REJECT_REASON_TAGS,
            **undo_context(request, rq),
        },
        status=200 if rq.valid else 400,
    )


@require(permissions.can_view_queue)
def review_next(request):
    """The next image of the filtered queue for this person, claimed for a reviewer;
    `after` is the image they leave (skipped: their claim on it is given back)."""
    rq = ReviewQueue(request.user, request.GET)
    if not rq.valid:
        return redirect(in_queue("review_queue", rq))
    current = None
    if after := rq.form.value("after"):
        current = Generation.objects.visible_to(request.user).filter(pk=after).first()
        if current is not None:
            claims.release(current, actor=request.user)
    return go_to_next(request, rq, current)


def go_to_next(request, rq: ReviewQueue, current):
    nxt = rq.take_next(current)
    if nxt is None:
        messages.info(request, "Nothing left for you in this queue.")
        return redirect(in_queue("review_queue", rq))
    return redirect(in_queue("generation_detail", rq, nxt.pk))


def visible_generation(request, pk) -> Generation:
    return get_object_or_404(
        Generation.objects.visible_to(request.user).select_related(
            "brief__workflow_version__workflow", "brief__created_by", "parent", "created_by"
        ),
        pk=pk,
    )


@login_only
def generation_detail(request, pk):
    generation = visible_generation(request, pk)
    user = request.user
    rq = ReviewQueue(user, request.GET) if permissions.can_view_queue(user) else None
    # A claim comes back only to someone with a decision to make on the image now
    # (claims.may_decide_now): theirs, or the one of the reviewer who holds it.
    claim = claims.open_for_review(generation, actor=user) if permissions.can_review(user) else None
    held_by = claim if claim is not None and claim.holder_id != user.pk else None
    mine = claim if claim is not None and held_by is None else None
    nxt = rq.next_for(generation) if rq else None
    decisions = generation.decisions.select_related("actor", "child", "reversed_by", "reverses")
    approvals = [d for d in decisions if d.action == "approve" and not d.is_reversed]
    decidable = generation.status in Generation.DECIDABLE
    # Why a reviewer sees no Approve button: they shaped this image.
    approved_by_me = any(d.actor_id == user.pk for d in approvals)
    is_author = (
        decidable
        and claim is None
        and not approved_by_me
        and permissions.can_review(user)
        and generation.is_authored_by(user)
    )
    return render(
        request,
        "review/generation_detail.html",
        {
            "generation": generation,
            "place": waiting.places([generation]).get(generation.pk),
            "assets": generation.assets.all(),
            "tree": lineage_tree(generation.brief),
            "decisions": decisions,
            "approvals": services.counted_approvals(generation),
            "approvals_needed": services.approvals_needed(generation),
            "approved_by_me": decidable and approved_by_me,
            "can_decide": mine is not None,
            "claim": mine,
            "held_by": held_by,
            "claim_seconds": settings.REVIEW_CLAIM_S,
            "is_author": is_author,
            # On an image awaiting review regenerating is its decision: only for whoever
            # holds it; once decided (or failed) anyone allowed may run it again.
            "can_regenerate": permissions.can_regenerate(user, generation)
            and generation.status in Generation.REGENERABLE
            and (not decidable or mine is not None),
            "has_seed": services.has_seed(generation),
            "back": safe_back(request),
            "can_cancel": generation.status in generation.CANCELLABLE
            and permissions.can_cancel(user, generation),
            "queue": rq,
            "position": rq.position(generation) if rq else None,
            "next": nxt,
            "prev": rq.previous(generation) if rq else None,
            "next_asset": nxt.assets.first() if nxt else None,
            "changes": param_changes(generation.parent, generation),
            "reject_tags": settings.REJECT_REASON_TAGS,
            # One key per form: a key answers only for the decision it made.
            "keys": {form: uuid.uuid4() for form in ("approve", "reject", "regenerate")},
            **undo_context(request, rq),
        },
    )


@login_only
def compare(request, pk, other):
    """Two generations of one brief side by side (two-up) or overlaid (slider)."""
    left = visible_generation(request, pk)
    right = visible_generation(request, other)
    if left.brief_id != right.brief_id:
        raise Http404("only generations of the same brief can be compared")
    return render(
        request,
        "review/compare.html",
        {
            "left": left,
            "right": right,
            "left_asset": left.assets.first(),
            "right_asset": right.assets.first(),
            "changes": param_changes(left, right),
            "mode": "slider" if request.GET.get("mode") == "slider" else "two-up",
        },
    )
