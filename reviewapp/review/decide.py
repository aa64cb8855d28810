"""The POST endpoints of review: decisions (approve, reject, regenerate, undo, bulk) and
the claim an open page renews and gives back. Each calls one service; the forms carry
the queue's filter in their URL, so the reviewer goes on within the list they chose."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from comfybridge.errors import ContractError, ParamsInvalid
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.briefs.forms import form_class_for
from reviewapp.briefs.models import Generation
from reviewapp.lib.redirects import safe_return_to
from reviewapp.review import claims, services
from reviewapp.review.forms import BulkDecisionForm
from reviewapp.review.models import Decision
from reviewapp.review.queue import ReviewQueue
from reviewapp.review.views import go_to_next, in_queue, offer_undo, visible_generation


def _uuid(request, name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.POST.get(name, ""))
    except ValueError:
        return None


def _back_to(request, generation):
    """The image's page, within the same queue."""
    return redirect(
        in_queue("generation_detail", ReviewQueue(request.user, request.GET), generation.pk)
    )


def _done(request, text: str) -> None:
    """Confirm a decision, unless the undo bar the next page shows says it already."""
    if settings.DECISION_UNDO_S <= 0:
        messages.success(request, text)


def _after_decision(request, generation, *, then=None):
    """A reviewer goes straight on to the next image of their queue (triage is a flow);
    anyone else, or "stay", to `then` (default: the image decided on)."""
    if permissions.can_review(request.user) and request.POST.get("then") != "stay":
        return go_to_next(request, ReviewQueue(request.user, request.GET), generation)
    return _back_to(request, then or generation)


@require_POST
@login_only
def approve(request, pk):
    generation = visible_generation(request, pk)
    try:
        decision = services.approve(generation, actor=request.user, key=_uuid(request, "key"))
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return _back_to(request, generation)
    offer_undo(request, decision)
    generation.refresh_from_db()
    if generation.status == Generation.Status.APPROVED:
        _done(request, f"#{generation.pk} approved.")
    else:
        approvals = services.counted_approvals(generation)
        needed = services.approvals_needed(generation)
        messages.info(
            request,
            f"#{generation.pk}: your approval is recorded ({approvals} of {needed} needed).",
        )
    return _after_decision(request, generation)


@require_POST
@login_only
def reject(request, pk):
    generation = visible_generation(request, pk)
    try:
        decision = services.reject(
            generation,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            tags=request.POST.getlist("tags"),
            key=_uuid(request, "key"),
        )
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return _back_to(request, generation)
    offer_undo(request, decision)
    _done(request, f"#{generation.pk} rejected.")
    return _after_decision(request, generation)


def _regenerated(request, generation, child, detail: str):
    """Where a regenerate leads: on through the queue when it was the image's decision,
    else to the child, which is running again."""
    offer_undo(request, child.created_by_decision)
    if child.created_by_decision.ended_review:
        _done(request, f"#{generation.pk} regenerated as #{child.pk}{detail}.")
        return _after_decision(request, generation, then=child)
    messages.success(request, f"Running again as #{child.pk}{detail}.")
    return _back_to(request, child)


@require_POST
@login_only
def regenerate(request, pk):
    generation = visible_generation(request, pk)
    try:
        child = services.regenerate(generation, actor=request.user, key=_uuid(request, "key"))
    except (services.DecisionRefused, ParamsInvalid) as exc:
        messages.error(request, str(exc))
        return _back_to(request, generation)
    seed = f" with seed {child.params['seed']}" if "seed" in child.params else ""
    return _regenerated(request, generation, child, seed)


@login_only
def regenerate_edit(request, pk):
    """Regenerate with edited parameters: the form pre-filled, validated again."""
    generation = visible_generation(request, pk)
    if not permissions.can_regenerate(request.user, generation):
        raise PermissionDenied
    # Editing is part of deciding: the image stays held while the form is open.
    claims.open_for_review(generation, actor=request.user)
    try:
        form_class = form_class_for(generation.brief.workflow_version)
    except ContractError:
        # Only a version stored before the import checks it now fails can get here.
        messages.error(
            request,
            "This workflow version's schema does not pass today's checks; "
            "regenerate with a new seed, or ask a workflow admin.",
        )
        return _back_to(request, generation)
    image_props = form_class.contract.image_properties()
    if request.method == "POST":
        form = form_class(request.POST)
    else:
        form = form_class(initial=generation.params)
    for name in image_props:
        del form.fields[name]  # the input images stay those of the brief
    if request.method == "POST" and form.is_valid():
        params = form.params()
        params.update({k: generation.params[k] for k in image_props if k in generation.params})
        try:
            child = services.regenerate(
                generation, actor=request.user, params=params, key=_uuid(request, "key")
            )
        except ParamsInvalid as exc:
            for prop, errors in exc.errors.items():
                for error in errors:
                    form.add_error(prop if prop in form.fields else None, error)
        except services.DecisionRefused as exc:
            messages.error(request, str(exc))
            return _back_to(request, generation)
        else:
            return _regenerated(request, generation, child, " with your changes")
    return render(
        request,
        "review/regenerate_edit.html",
        {
            "generation": generation,
            "form": form,
            "key": uuid.uuid4(),
            "queue": ReviewQueue(request.user, request.GET),
        },
    )


@require_POST
@login_only
def undo(request, pk):
    """Undo the reviewer's own last decision (within DECISION_UNDO_S): the image is
    back in review, and they are taken to it."""
    decision = get_object_or_404(
        Decision.objects.select_related("generation"), pk=pk, actor=request.user
    )
    generation = decision.generation
    try:
        services.undo(decision, actor=request.user)
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return _back_to(request, generation)
    generation.refresh_from_db()
    done = f"Undone: your {decision.noun} of #{generation.pk}"
    if decision.action == Decision.Action.REGENERATE and decision.child_id:
        done += f" (#{decision.child_id} cancelled)"
    if generation.status == Generation.Status.AWAITING_REVIEW:
        done += "; it awaits review again"
    messages.success(request, done + ".")
    return _back_to(request, generation)


@require_POST
@require(permissions.can_review)
def bulk_decide(request):
    back = safe_return_to(request, reverse("review_queue"))
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        for problem in form.problems():
            messages.error(request, problem)
        return HttpResponseRedirect(back)
    action = form.cleaned_data["action"]
    generations = (
        Generation.objects.visible_to(request.user)
        .filter(pk__in=form.cleaned_data["ids"])
        .order_by("id")
    )
    decided, problems = services.bulk_decide(
        generations,
        action,
        actor=request.user,
        reason=request.POST.get("reason", ""),
        tags=request.POST.getlist("tags"),
    )
    if decided:
        verb = "approved" if action == "approve" else "rejected"
        messages.success(request, f"{len(decided)} image(s) {verb}.")
    for problem in problems:
        messages.error(request, problem)
    return HttpResponseRedirect(back)


@require_POST
@require(permissions.can_review)
def claim(request, pk):
    """Renewed by the open page: {"held": true} while this reviewer holds the image,
    else who does ({"held": false, "holder": "alice"}; null when nobody can)."""
    generation = visible_generation(request, pk)
    current = claims.renew(generation, actor=request.user, token=_uuid(request, "token"))
    if current is None:
        return JsonResponse({"held": False, "holder": None})
    mine = current.holder_id == request.user.pk
    left = (current.expires_at - timezone.now()).total_seconds()
    return JsonResponse(
        {"held": mine, "holder": current.holder.get_username(), "expires_in_s": round(left, 1)}
    )


@require_POST
@require(permissions.can_review)
def release(request, pk):
    """Sent by the page as it goes away (a beacon): the image is free for others."""
    generation = visible_generation(request, pk)
    token = _uuid(request, "token")
    if token is None:  # only the page that took the claim gives it back
        return HttpResponse("a release names the page's claim token", status=400)
    claims.release(generation, actor=request.user, token=token)
    return HttpResponse(status=204)
