from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from comfybridge.errors import ContractError
from reviewapp.accounts import permissions
from reviewapp.accounts.views import login_only, require
from reviewapp.catalog import services
from reviewapp.catalog.diff import diff_versions
from reviewapp.catalog.forms import DiffChoiceForm, ImportVersionForm
from reviewapp.catalog.models import Workflow, WorkflowVersion


@login_only
def workflow_list(request):
    versions = WorkflowVersion.objects.filter(
        status=WorkflowVersion.Status.PUBLISHED
    ).select_related("workflow")
    rows = [(v.workflow, v) for v in sorted(versions, key=lambda v: v.workflow.title)]
    return render(request, "catalog/workflow_list.html", {"rows": rows})


@require(permissions.can_manage_workflows)
def manage_list(request):
    workflows = Workflow.objects.prefetch_related("versions")
    return render(request, "catalog/manage_list.html", {"workflows": workflows})


@require(permissions.can_manage_workflows)
def manage_import(request):
    form = ImportVersionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            version, created = services.import_version(
                form.cleaned_data["slug"],
                form.cleaned_data["graph"],
                form.cleaned_data["schema"],
                actor=request.user,
                publish=form.cleaned_data["publish"],
            )
        except ContractError as exc:
            for problem in exc.problems:
                form.add_error(None, problem)
        else:
            if created:
                messages.success(request, f"Imported {version} ({version.get_status_display()}).")
                note = services.pool_note(version)
                if note:
                    messages.warning(request, note)
            else:
                messages.info(request, f"Nothing new: identical to {version}.")
            return redirect("manage_workflow", slug=version.workflow.slug)
    return render(request, "catalog/manage_import.html", {"form": form})


@require(permissions.can_manage_workflows)
def manage_workflow(request, slug):
    workflow = get_object_or_404(Workflow, slug=slug)
    versions = list(workflow.versions.order_by("-number"))
    diff = a = b = None
    choice = DiffChoiceForm(request.GET, numbers=[v.number for v in versions])
    if len(versions) >= 2 and choice.is_valid():
        by_number = {v.number: v for v in versions}
        a = by_number[choice.cleaned_data["a"] or versions[1].number]
        b = by_number[choice.cleaned_data["b"] or versions[0].number]
        diff = diff_versions(a, b)
    return render(
        request,
        "catalog/manage_workflow.html",
        {
            "workflow": workflow,
            "versions": versions,
            "diff": diff,
            "a": a,
            "b": b,
            "problems": choice.problems(),
        },
        status=200 if choice.is_valid() else 400,
    )


@require_POST
@require(permissions.can_manage_workflows)
def version_publish(request, slug, number):
    version = get_object_or_404(WorkflowVersion, workflow__slug=slug, number=number)
    services.publish_version(version, actor=request.user)
    messages.success(request, f"{version} is published; new briefs use it.")
    return redirect("manage_workflow", slug=slug)


@require_POST
@require(permissions.can_manage_workflows)
def version_retire(request, slug, number):
    version = get_object_or_404(WorkflowVersion, workflow__slug=slug, number=number)
    services.retire_version(version, actor=request.user)
    messages.success(request, f"{version} is retired; briefs that used it keep working.")
    return redirect("manage_workflow", slug=slug)
