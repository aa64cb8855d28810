import csv
import json

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_date

from reviewapp.accounts import permissions
from reviewapp.accounts.views import require
from reviewapp.audit.models import AuditEvent
from reviewapp.catalog.models import Workflow

FILTERS = ("actor", "action", "workflow", "since", "until")


def _filtered(request):
    filters = {k: request.GET.get(k, "").strip() for k in FILTERS}
    events = AuditEvent.objects.select_related("seal").order_by("-id")
    if filters["actor"]:
        events = events.filter(actor_name=filters["actor"])
    if filters["action"]:
        events = events.filter(action=filters["action"])
    if filters["workflow"]:
        events = events.filter(workflow_slug=filters["workflow"])
    if since := parse_date(filters["since"]) if filters["since"] else None:
        events = events.filter(created_at__date__gte=since)
    if until := parse_date(filters["until"]) if filters["until"] else None:
        events = events.filter(created_at__date__lte=until)
    return filters, events


@require(permissions.can_view_audit)
def audit_list(request):
    filters, events = _filtered(request)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    workflows = Workflow.objects.order_by("slug").values_list("slug", flat=True)
    actors = get_user_model().objects.order_by("username").values_list("username", flat=True)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/audit_list.html",
        {
            "page": page,
            "filters": filters,
            "actions": _known_actions(),
            "workflows": workflows,
            "actors": [*actors, "system"],
            "query": query.urlencode(),
        },
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
    _, events = _filtered(request)
    writer = csv.writer(_Echo())
    header = ["id", "time_utc", "actor", "action", "target_type", "target_id", "workflow",
              "changes", "request_id", "ip", "seq", "seal_hash", "row_mac"]  # fmt: skip

    def rows():
        yield writer.writerow(header)
        for e in events.iterator(chunk_size=2000):
            yield writer.writerow([
                e.pk, e.created_at.isoformat(), e.actor_name, e.action, e.target_type,
                e.target_id, e.workflow_slug, json.dumps(e.changes, sort_keys=True),
                e.request_id, e.ip or "", *_seal_columns(e), e.row_mac,
            ])  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
