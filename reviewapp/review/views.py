from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from comfybridge.errors import ParamsInvalid
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.briefs.models import Generation
from reviewapp.review import services


@require(permissions.can_review)
def queue(request):
    status = request.GET.get("status", "")
    generations = (
        Generation.objects.visible_to(request.user)
        .select_related("brief__workflow_version__workflow", "brief__created_by")
        .prefetch_related("assets")
    )
    if status in Generation.Status.values:
        generations = generations.filter(status=status)
    # Pending first, oldest first within them, then everything else newest first.
    generations = generations.annotate(
        pending=Case(
            When(status=Generation.Status.AWAITING_REVIEW, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    ).order_by("pending", "created_at", "id")
    page = Paginator(generations, 48).get_page(request.GET.get("page"))
    awaiting = Generation.objects.filter(status=Generation.Status.AWAITING_REVIEW).count()
    return render(
        request,
        "review/queue.html",
        {
            "page": page,
            "status": status,
            "statuses": Generation.Status.choices,
            "awaiting": awaiting,
        },
    )


def _visible_generation(request, pk) -> Generation:
    return get_object_or_404(
        Generation.objects.visible_to(request.user).select_related(
            "brief__workflow_version__workflow", "brief__created_by", "parent", "created_by"
        ),
        pk=pk,
    )


@login_only
def generation_detail(request, pk):
    generation = _visible_generation(request, pk)
    lineage = (
        generation.brief.generations.select_related("parent")
        .prefetch_related("assets", "decisions__actor")
        .order_by("created_at", "id")
    )
    next_pending = (
        Generation.objects.filter(status=Generation.Status.AWAITING_REVIEW)
        .exclude(pk=generation.pk)
        .order_by("created_at", "id")
        .first()
        if permissions.can_review(request.user)
        else None
    )
    changes = {}
    if generation.parent:
        changes = {
            k: (generation.parent.params.get(k), v)
            for k, v in generation.params.items()
            if generation.parent.params.get(k) != v
        }
    return render(
        request,
        "review/generation_detail.html",
        {
            "generation": generation,
            "assets": generation.assets.all(),
            "lineage": lineage,
            "decisions": generation.decisions.select_related("actor", "child"),
            "can_decide": permissions.can_decide(request.user, generation)
            and generation.status in Generation.DECIDABLE,
            "can_regenerate": permissions.can_regenerate(request.user, generation)
            and generation.status in Generation.REGENERABLE,
            "next_pending": next_pending,
            "has_seed": services.has_seed(generation),
            "changes": changes,
        },
    )


def _after_decision(request, generation):
    target = request.POST.get("next") or ""
    if target == "queue":
        return redirect("review_queue")
    return redirect("generation_detail", pk=generation.pk)


@require_POST
@login_only
def approve(request, pk):
    generation = _visible_generation(request, pk)
    try:
        services.approve(generation, actor=request.user)
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Generation #{generation.pk} approved.")
    return _after_decision(request, generation)


@require_POST
@login_only
def reject(request, pk):
    generation = _visible_generation(request, pk)
    try:
        services.reject(generation, actor=request.user, reason=request.POST.get("reason", ""))
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Generation #{generation.pk} rejected.")
    return _after_decision(request, generation)


@require_POST
@login_only
def regenerate(request, pk):
    generation = _visible_generation(request, pk)
    try:
        child = services.regenerate(generation, actor=request.user)
    except (services.DecisionRefused, ParamsInvalid) as exc:
        messages.error(request, str(exc))
        return redirect("generation_detail", pk=generation.pk)
    except PermissionDenied:
        raise
    seed = f" with seed {child.params['seed']}" if "seed" in child.params else ""
    messages.success(request, f"Regenerating as #{child.pk}{seed}.")
    return redirect("generation_detail", pk=child.pk)
