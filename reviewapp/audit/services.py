"""The one way to write the audit trail."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from reviewapp.audit import chain
from reviewapp.audit.context import current_request_context
from reviewapp.audit.models import AuditEvent

# Rows per INSERT when appending in bulk: under SQLite's variable limit, and few
# round trips for thousands of events.
BULK_BATCH = 500


def record(
    action: str,
    *,
    actor,
    target,
    changes: dict | None = None,
    workflow_slug: str = "",
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change, so the
    event exists exactly when the change does.

    `actor` is a user, or None for the system (workers, the reconciler). `target` is a
    model instance, or None for events about no stored object (a failed login for an
    unknown name). The insert touches no shared row: the sealer chains it later.
    """
    event = _event(action, actor, target, changes, workflow_slug, current_request_context())
    event.save(force_insert=True)
    return event


def record_many(
    action: str,
    *,
    actor,
    items: Iterable[tuple[object, dict]],
    workflow_slug: str = "",
) -> int:
    """Append one event per (target, changes) pair, in a few INSERTs: a campaign's
    thousands of cells each get their own event without a round trip each. The same
    rules as `record`; returns how many were written."""
    ctx = current_request_context()
    events = [
        _event(action, actor, target, changes, workflow_slug, ctx) for target, changes in items
    ]
    AuditEvent.objects.bulk_create(events, batch_size=BULK_BATCH)
    return len(events)


def _event(action, actor, target, changes, workflow_slug, ctx) -> AuditEvent:
    user = actor if actor is not None and actor.is_authenticated else None
    ip = ctx.get("ip") or None
    if ip and ":" in ip:
        ip = clean_ipv6_address(ip)  # as the database will store it
    event = AuditEvent(
        created_at=timezone.now(),
        actor=user,
        actor_ref=user.pk if user else None,
        actor_name=user.get_username() if user else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        workflow_slug=workflow_slug,
        changes=chain.normalised(changes or {}),
        request_id=ctx.get("request_id", ""),
        ip=ip,
    )
    event.row_mac = chain.event_mac(event)
    return event
