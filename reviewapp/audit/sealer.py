"""The sealer: gives committed events their sequence number and HMAC chain link.

One sealer runs at a time: on PostgreSQL a transaction-scoped advisory lock, on SQLite the
database's single writer lock (transactions begin IMMEDIATE). It seals only events that no
open transaction can still precede, in commit order, so the sealed events are always a
prefix of the trail and a row that appears below that prefix later was not written by
the application:

- PostgreSQL: an event's `txid` is its inserting transaction's id (set by a trigger).
  Every transaction with an id below the snapshot's xmin has ended, and every transaction
  still open or yet to start has an id at or above it. So the events with txid < xmin
  are all the events that will ever have such ids, and they are sealed in (txid, id)
  order; the rest wait for the next round.
- SQLite: writers hold the database's write lock from their first write to their commit,
  so ids are handed out in commit order and every visible event is committed.

An event whose MAC does not match its content (edited, or inserted by someone without
AUDIT_KEY) is never sealed: sealing stops before it and says so, and verify_audit names it.
"""

from __future__ import annotations

import logging
import zlib

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from reviewapp.audit import chain
from reviewapp.audit.models import AuditEvent, AuditSeal

log = logging.getLogger(__name__)

# pg_try_advisory_xact_lock's key: any 64-bit number no other lock in the database uses.
LOCK_KEY = zlib.crc32(b"reviewapp.audit.sealer")


class SealBlocked(Exception):
    """An unsealed event fails its MAC check: sealing cannot go past it."""

    def __init__(self, event: AuditEvent):
        self.event = event
        super().__init__(
            f"event #{event.pk} ({event.action} at {event.created_at:%Y-%m-%d %H:%M:%S}) "
            "does not match its MAC: it was changed, or written without AUDIT_KEY; "
            "sealing stops before it"
        )


def head() -> AuditSeal | None:
    return AuditSeal.objects.select_related("event").order_by("-seq").first()


def _pending(last: AuditSeal | None, limit: int):
    events = AuditEvent.objects.all()
    if connection.vendor == "postgresql":
        last_txid = (last.event.txid or 0) if last else 0
        last_id = last.event_id if last else 0
        events = events.filter(
            Q(txid__gt=last_txid) | Q(txid=last_txid, id__gt=last_id),
            txid__lt=RawSQL("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", []),
        )
        return events.order_by("txid", "id")[:limit]
    return events.filter(id__gt=last.event_id if last else 0).order_by("id")[:limit]


def seal_pending(batch: int = 5000) -> int:
    """Seal up to `batch` events. Returns how many; 0 when another sealer holds the lease.

    Raises SealBlocked when the next event in commit order fails its MAC check.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
                if not cursor.fetchone()[0]:
                    return 0
        last = head()
        seq = last.seq if last else 0
        prev = last.hash if last else chain.GENESIS
        kid, now = chain.key_id(), timezone.now()
        seals, blocked = [], None
        for event in _pending(last, batch):
            if chain.event_mac(event) != event.row_mac:
                blocked = event
                break
            seq += 1
            prev = chain.seal_hash(seq, event.pk, prev, event.row_mac)
            seals.append(
                AuditSeal(
                    seq=seq,
                    event=event,
                    epoch=AuditSeal.Epoch.HMAC,
                    key_id=kid,
                    hash=prev,
                    sealed_at=now,
                )
            )
        AuditSeal.objects.bulk_create(seals, batch_size=1000)
    if blocked is not None:
        log.error("%s", SealBlocked(blocked))
        if not seals:
            raise SealBlocked(blocked)
    return len(seals)


def seal_all(batch: int = 5000) -> int:
    """Seal until nothing sealable is left (tests, checkpoints, the benchmark)."""
    total = 0
    while n := seal_pending(batch):
        total += n
    return total
