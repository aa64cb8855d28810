import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from comfybridge.errors import ContractError, ParamsInvalid
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.briefs import waiting
from reviewapp.briefs.forms import form_class_for
from reviewapp.briefs.models import Brief, Generation
from reviewapp.catalog.models import Workflow
from reviewapp.lib.redirects import safe_return_to
from reviewapp.review import services
from reviewapp.review.forms import ANY_STATUS, BulkDecisionForm, QueueFilterForm
from reviewapp.review.lineage import lineage_tree, param_changes


def _filtered_queue(user, form: QueueFilterForm):
    if not form.is_valid():
        # Nothing rather than a guess at what a half-understood filter meant.
        return Generation.objects.none()
    generations = Generation.objects.visible_to(user)
    # Awaiting review unless asked otherwise: the reviewer's work, and the
    # (status, created_at) index serves it without sorting the whole table.
    status = form.value("status") or Generation.Status.AWAITING_REVIEW
    if status != ANY_STATUS:
        generations = generations.filter(status=status)
    if workflow := form.value("workflow"):
        generations = generations.filter(brief__workflow_version__workflow__slug=workflow)
    if submitter := form.value("submitter"):
        generations = generations.filter(brief__created_by__username=submitter)
    if since := form.value("since"):
        generations = generations.filter(created_at__date__gte=since)
    if until := form.value("until"):
        generations = generations.filter(created_at__date__lte=until)
    return generations.order_by(*form.order_by())


@require(permissions.can_review)
def queue(request):
    form = QueueFilterForm(request.GET)
    generations = (
        _filtered_queue(request.user, form)
        .select_related("brief__workflow_version__workflow", "brief__created_by")
        .prefetch_related("assets")
    )
    page = Paginator(generations, 48).get_page(form.page_number())
    page.object_list = list(page.object_list)
    waiting.attach_places(page.object_list)
    if form.is_valid() and not form.is_filtered() and permissions.sees_everything(request.user):
        awaiting = page.paginator.count  # the same COUNT: do not run it twice
    else:
        awaiting = Generation.objects.filter(status=Generation.Status.AWAITING_REVIEW).count()
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
            "filters": form.raw(),
            "problems": form.problems(),
            "statuses": Generation.Status.choices,
            "workflows": Workflow.objects.order_by("slug").values_list("slug", flat=True),
            "submitters": sorted(submitters),
            "awaiting": awaiting,
            "reject_tags": settings.REJECT_REASON_TAGS,
        },
        status=200 if form.is_valid() else 400,
    )


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


def _visible_generation(request, pk) -> Generation:
    return get_object_or_404(
        Generation.objects.visible_to(request.user).select_related(
            "brief__workflow_version__workflow", "brief__created_by", "parent", "created_by"
        ),
        pk=pk,
    )


def _awaiting_for(user):
    """Awaiting review and decidable by `user`: by can_decide's rule, authors excluded."""
    return permissions.decidable_by(
        user, Generation.objects.filter(status=Generation.Status.AWAITING_REVIEW)
    )


def _neighbours(user, generation):
    """The awaiting items just after and just before this one, in queue order."""
    if not permissions.can_review(user):
        return None, None
    pending = _awaiting_for(user).exclude(pk=generation.pk)
    after = (
        pending.filter(created_at__gt=generation.created_at)
        | pending.filter(created_at=generation.created_at, id__gt=generation.pk)
    ).order_by("created_at", "id")
    before = (
        pending.filter(created_at__lt=generation.created_at)
        | pending.filter(created_at=generation.created_at, id__lt=generation.pk)
    ).order_by("-created_at", "-id")
    nxt = after.first() or pending.order_by("created_at", "id").first()
    return nxt, before.first()


@login_only
def generation_detail(request, pk):
    generation = _visible_generation(request, pk)
    nxt, prev = _neighbours(request.user, generation)
    next_asset = nxt.assets.first() if nxt else None
    decisions = generation.decisions.select_related("actor", "child")
    approvals = [d for d in decisions if d.action == "approve"]
    decidable = generation.status in Generation.DECIDABLE
    can_decide = decidable and permissions.can_decide(request.user, generation)
    # Why a reviewer sees no Approve button: they shaped this image.
    is_author = (
        decidable
        and not can_decide
        and permissions.can_review(request.user)
        and generation.is_authored_by(request.user)
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
            "approved_by_me": any(d.actor_id == request.user.pk for d in approvals),
            "can_decide": can_decide,
            "is_author": is_author,
            "can_regenerate": permissions.can_regenerate(request.user, generation)
            and generation.status in Generation.REGENERABLE,
            "has_seed": services.has_seed(generation),
            "can_cancel": generation.is_active and permissions.can_cancel(request.user, generation),
            "next": nxt,
            "prev": prev,
            "next_asset": next_asset,
            "changes": param_changes(generation.parent, generation),
            "reject_tags": settings.REJECT_REASON_TAGS,
            # One key per form: a key answers only for the decision it made.
            "keys": {form: uuid.uuid4() for form in ("approve", "reject", "regenerate")},
        },
    )


def _key(request):
    try:
        return uuid.UUID(request.POST.get("key", ""))
    except ValueError:
        return None


def _after_decision(request, generation):
    """Straight on to the next image awaiting review: triage is a flow."""
    nxt, _ = _neighbours(request.user, generation)
    if request.POST.get("then") == "stay" or nxt is None:
        if nxt is None and request.POST.get("then") != "stay":
            messages.info(request, "The queue is empty.")
            return redirect("review_queue")
        return redirect("generation_detail", pk=generation.pk)
    return redirect("generation_detail", pk=nxt.pk)


@require_POST
@login_only
def approve(request, pk):
    generation = _visible_generation(request, pk)
    try:
        services.approve(generation, actor=request.user, key=_key(request))
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return redirect("generation_detail", pk=generation.pk)
    generation.refresh_from_db()
    if generation.status == Generation.Status.APPROVED:
        messages.success(request, f"#{generation.pk} approved.")
    else:
        messages.success(request, f"#{generation.pk}: your approval is recorded.")
    return _after_decision(request, generation)


@require_POST
@login_only
def reject(request, pk):
    generation = _visible_generation(request, pk)
    try:
        services.reject(
            generation,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            tags=request.POST.getlist("tags"),
            key=_key(request),
        )
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return redirect("generation_detail", pk=generation.pk)
    messages.success(request, f"#{generation.pk} rejected.")
    return _after_decision(request, generation)


@require_POST
@login_only
def regenerate(request, pk):
    generation = _visible_generation(request, pk)
    try:
        child = services.regenerate(generation, actor=request.user, key=_key(request))
    except (services.DecisionRefused, ParamsInvalid) as exc:
        messages.error(request, str(exc))
        return redirect("generation_detail", pk=generation.pk)
    seed = f" with seed {child.params['seed']}" if "seed" in child.params else ""
    messages.success(request, f"Regenerating as #{child.pk}{seed}.")
    return redirect("generation_detail", pk=child.pk)


@login_only
def regenerate_edit(request, pk):
    """Regenerate with edited parameters: the form pre-filled, validated again."""
    generation = _visible_generation(request, pk)
    if not permissions.can_regenerate(request.user, generation):
        raise PermissionDenied
    try:
        form_class = form_class_for(generation.brief.workflow_version)
    except ContractError:
        # Only a version stored before the import checks it now fails can get here.
        messages.error(
            request,
            "This workflow version's schema does not pass today's checks; "
            "regenerate with a new seed, or ask a workflow admin.",
        )
        return redirect("generation_detail", pk=generation.pk)
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
                generation, actor=request.user, params=params, key=_key(request)
            )
        except ParamsInvalid as exc:
            for prop, errors in exc.errors.items():
                for error in errors:
                    form.add_error(prop if prop in form.fields else None, error)
        except services.DecisionRefused as exc:
            messages.error(request, str(exc))
            return redirect("generation_detail", pk=generation.pk)
        else:
            messages.success(request, f"Regenerating as #{child.pk} with your changes.")
            return redirect("generation_detail", pk=child.pk)
    return render(
        request,
        "review/regenerate_edit.html",
        {"generation": generation, "form": form, "key": uuid.uuid4()},
    )


@login_only
def compare(request, pk, other):
    """Two generations of one brief side by side (two-up) or overlaid (slider)."""
    left = _visible_generation(request, pk)
    right = _visible_generation(request, other)
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
