"""The one way to write the audit trail."""

from __future__ import annotations

from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from reviewapp.audit import chain
from reviewapp.audit.context import current_request_context
from reviewapp.audit.models import AuditEvent


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
    ctx = current_request_context()
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
    event.save(force_insert=True)
    return event
