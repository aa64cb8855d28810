from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.dateparse import parse_date

from reviewapp.accounts import permissions
from reviewapp.accounts.views import require
from reviewapp.audit.models import AuditEvent


@require(permissions.can_view_audit)
def audit_list(request):
    events = AuditEvent.objects.select_related("actor").order_by("-id")
    filters = {
        k: request.GET.get(k, "").strip() for k in ("actor", "action", "workflow", "since", "until")
    }
    if filters["actor"]:
        events = events.filter(actor_name=filters["actor"])
    if filters["action"]:
        events = events.filter(action=filters["action"])
    if filters["workflow"]:
        events = events.filter(workflow_slug=filters["workflow"])
    if since := parse_date(filters["since"] or "") if filters["since"] else None:
        events = events.filter(created_at__date__gte=since)
    if until := parse_date(filters["until"] or "") if filters["until"] else None:
        events = events.filter(created_at__date__lte=until)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    actors = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return render(
        request,
        "audit/audit_list.html",
        {"page": page, "filters": filters, "actions": actions, "actors": [*actors, "system"]},
    )
