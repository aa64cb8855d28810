import csv
import json

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render

from reviewapp.accounts import permissions
from reviewapp.accounts.views import require
from reviewapp.audit.forms import AuditFilterForm
from reviewapp.audit.models import AuditEvent
from reviewapp.catalog.models import Workflow
from reviewapp.lib import csvsafe


def _filtered(request):
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, AuditEvent.objects.none()
    events = AuditEvent.objects.select_related("seal").order_by("-id")
    if actor := form.value("actor"):
        events = events.filter(actor_name=actor)
    if action := form.value("action"):
        events = events.filter(action=action)
    if workflow := form.value("workflow"):
        events = events.filter(workflow_slug=workflow)
    return form, form.within_dates(events)


@require(permissions.can_view_audit)
def audit_list(request):
    form, events = _filtered(request)
    page = Paginator(events, 50).get_page(form.page_number())
    workflows = Workflow.objects.order_by("slug").values_list("slug", flat=True)
    actors = get_user_model().objects.order_by("username").values_list("username", flat=True)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/audit_list.html",
        {
            "page": page,
            "filters": form.raw(),
            "problems": form.problems(),
            "actions": _known_actions(),
            "workflows": workflows,
            "actors": [*actors, "system"],
            "query": query.urlencode(),
        },
        status=200 if form.is_valid() else 400,
    )


def _known_actions() -> list[str]:
    """The actions the trail holds, for the filter. A DISTINCT over the whole trail costs
    more than the page itself, and new kinds of action are rare: cached a minute."""
    actions = cache.get("audit:actions")
    if actions is None:
        actions = list(
            AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        )
        cache.set("audit:actions", actions, 60)
    return actions


def _seal_columns(event) -> tuple:
    """Sequence number and chain hash, or blanks while the sealer has not reached it."""
    seal = getattr(event, "seal", None)
    return (seal.seq, seal.hash) if seal else ("", "")


class _Echo:
    def write(self, value):
        return value


@require(permissions.can_view_audit)
def audit_export(request):
    """The filtered trail as CSV, streamed so a long trail does not fill memory."""
    form, events = _filtered(request)
    if not form.is_valid():
        # Not an export of everything: the filter that was meant is not understood.
        return HttpResponseBadRequest(
            "Nothing exported, the filters could not be used:\n" + "\n".join(form.problems()),
            content_type="text/plain; charset=utf-8",
        )
    writer = csv.writer(_Echo())
    header = [
        "id",
        "time_utc",
        "actor",
        "action",
        "target_type",
        "target_id",
        "workflow",
        "changes",
        "request_id",
        "ip",
        "seq",
        "seal_hash",
        "row_mac",
    ]

    def rows():
        yield csvsafe.writerow(writer, header)
        for e in events.iterator(chunk_size=2000):
            yield csvsafe.writerow(
                writer,
                [
                    e.pk,
                    e.created_at.isoformat(),
                    e.actor_name,
                    e.action,
                    e.target_type,
                    e.target_id,
                    e.workflow_slug,
                    json.dumps(e.changes, sort_keys=True),
                    e.request_id,
                    e.ip or "",
                    *_seal_columns(e),
                    e.row_mac,
                ],
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
