"""The one way to write the audit trail."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from reviewapp.audit.context import current_request_context
from reviewapp.audit.models import AuditChain, AuditEvent

GENESIS = "0" * 64


def record(
    action: str,
    *,
    actor,
    target,
    changes: dict | None = None,
    workflow_slug: str = "",
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change.

    `actor` is a user, or None for the system (workers, the reconciler). `target` is a
    model instance, or None for events about no stored object (a failed login for an
    unknown name).
    """
    ctx = current_request_context()
    with transaction.atomic():
        chain, _ = AuditChain.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS}
        )
        user = actor if actor is not None and actor.is_authenticated else None
        event = AuditEvent(
            created_at=timezone.now(),
            actor=user,
            actor_ref=user.pk if user else None,
            actor_name=user.get_username() if user else "system",
            action=action,
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            workflow_slug=workflow_slug,
            changes=changes or {},
            request_id=ctx.get("request_id", ""),
            ip=ctx.get("ip"),
            prev_hash=chain.last_hash,
        )
        event.hash = event.compute_hash()
        event.save()
        chain.last_hash = event.hash
        chain.save(update_fields=["last_hash"])
    return event


def verify_chain() -> tuple[int, AuditEvent | None, str]:
    """Recompute the chain oldest first. Returns (events checked, first bad event, why)."""
    prev = GENESIS
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return checked, event, "its predecessor is missing or was changed"
        if event.compute_hash() != event.hash:
            return checked, event, "its content was changed"
        prev = event.hash
        checked += 1
    chain = AuditChain.objects.filter(pk=1).first()
    if chain is not None and chain.last_hash != prev:
        return checked, None, "the newest events were deleted"
    return checked, None, ""
