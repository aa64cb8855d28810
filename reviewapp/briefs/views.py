from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from comfybridge.errors import ContractError, ParamsInvalid
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.briefs import services, waiting
from reviewapp.briefs.forms import form_class_for
from reviewapp.briefs.models import Asset, Brief, Generation
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.lib.filters import FilterForm
from reviewapp.lib.redirects import safe_return_to


@require(permissions.can_submit)
def brief_new(request, slug):
    version = get_object_or_404(
        WorkflowVersion.objects.select_related("workflow"),
        workflow__slug=slug,
        status=WorkflowVersion.Status.PUBLISHED,
    )
    try:
        form_class = form_class_for(version)
    except ContractError:
        # Only a version stored before the import checks it now fails can get here.
        messages.error(
            request,
            f"{version} cannot take briefs: its schema does not pass today's checks. "
            "Ask a workflow admin to import a corrected version.",
        )
        return redirect("workflow_list")
    if request.method == "POST":
        form = form_class(request.POST, request.FILES)
        if form.is_valid():
            try:
                brief = services.submit_brief(
                    version, form.params(), actor=request.user, files=form.files_by_property()
                )
            except ParamsInvalid as exc:
                for prop, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(prop if prop in form.fields else None, error)
            else:
                messages.success(request, f"Brief #{brief.pk} queued.")
                return redirect("brief_detail", pk=brief.pk)
    else:
        form = form_class()
    return render(request, "briefs/brief_new.html", {"form": form, "version": version})


@login_only
def brief_list(request):
    briefs = (
        Brief.objects.visible_to(request.user)
        .select_related("workflow_version__workflow", "created_by")
        .prefetch_related(
            Prefetch("generations", queryset=Generation.objects.prefetch_related("assets"))
        )
    )
    form = FilterForm(request.GET)
    if not form.is_valid():
        briefs = briefs.none()
    page = Paginator(briefs, 25).get_page(form.page_number())
    return render(
        request,
        "briefs/brief_list.html",
        {"page": page, "problems": form.problems()},
        status=200 if form.is_valid() else 400,
    )


def _visible_brief(request, pk) -> Brief:
    brief = get_object_or_404(
        Brief.objects.visible_to(request.user).select_related(
            "workflow_version__workflow", "created_by"
        ),
        pk=pk,
    )
    return brief


@login_only
def brief_detail(request, pk):
    brief = _visible_brief(request, pk)
    generations = list(
        brief.generations.select_related("parent", "created_by")
        .prefetch_related("assets", "decisions__actor")
        .order_by("created_at", "id")
    )
    waiting.attach_places(generations)
    return render(
        request,
        "briefs/brief_detail.html",
        {"brief": brief, "generations": generations, "schema": brief.workflow_version.schema},
    )


@require_POST
@login_only
def generation_cancel(request, pk):
    generation = get_object_or_404(Generation.objects.visible_to(request.user), pk=pk)
    try:
        services.cancel_generation(generation, actor=request.user)
    except services.NotCancellable as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"#{generation.pk} cancelled.")
    default = reverse("brief_detail", args=[generation.brief_id])
    return HttpResponseRedirect(safe_return_to(request, default))


@require_GET
@login_only
def brief_status(request, pk):
    """What the brief page polls to update status and progress without a reload."""
    brief = _visible_brief(request, pk)
    generations = list(brief.generations.prefetch_related("assets").order_by("created_at", "id"))
    found = waiting.places(generations)
    data = []
    for gen in generations:
        place = found.get(gen.pk)
        data.append(
            {
                "id": gen.pk,
                "status": gen.status,
                "status_label": gen.get_status_display(),
                "progress": round(gen.progress, 3),
                "progress_text": gen.progress_text,
                "error": gen.error,
                "place": place.text if place else "",
                "waiting_reason": place.reason if place else "",
                "eta_s": place.eta_s if place else None,
                "thumbnails": [a.pk for a in gen.assets.all()],
            }
        )
    return JsonResponse({"brief": brief.pk, "generations": data})


def _visible_asset(request, pk) -> Asset:
    asset = get_object_or_404(
        Asset.objects.select_related("generation__brief__workflow_version__workflow"), pk=pk
    )
    if not permissions.can_view_brief(request.user, asset.generation.brief):
        raise Http404
    return asset


@require_GET
@login_only
def asset_file(request, pk):
    asset = _visible_asset(request, pk)
    response = FileResponse(asset.open_delivered(), content_type=asset.content_type)
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


@require_GET
@login_only
def asset_thumbnail(request, pk):
    asset = _visible_asset(request, pk)
    response = FileResponse(asset.thumbnail.open("rb"), content_type="image/webp")
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response
