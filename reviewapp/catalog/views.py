from django.shortcuts import render

from reviewapp.accounts.views import login_only
from reviewapp.catalog.models import Workflow, WorkflowVersion


@login_only
def workflow_list(request):
    workflows = (
        Workflow.objects.filter(versions__status=WorkflowVersion.Status.PUBLISHED)
        .distinct()
        .prefetch_related("versions")
    )
    rows = [(wf, next(v for v in wf.versions.all() if v.status == "published")) for wf in workflows]
    return render(request, "catalog/workflow_list.html", {"rows": rows})
