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

The sealer reads only ids and MACs: the chain covers each event's MAC, and verify_audit
recomputes MACs from content (an edited row, or one inserted without AUDIT_KEY, is named
there whether or not it was sealed).
"""

from __future__ import annotations

import zlib

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from reviewapp.audit import chain
from reviewapp.audit.models import AuditEvent, AuditSeal

# pg_try_advisory_xact_lock's key: any 64-bit number no other lock in the database uses.
LOCK_KEY = zlib.crc32(b"reviewapp.audit.sealer")


def head() -> AuditSeal | None:
    return AuditSeal.objects.order_by("-seq").first()


def _pending(last: AuditSeal | None, limit: int) -> list[tuple[int, str]]:
    """(id, row_mac) of the next events in commit order: all the chain needs."""
    events = AuditEvent.objects.all()
    if connection.vendor == "postgresql":
        last_txid, last_id = (
            AuditEvent.objects.filter(pk=last.event_id).values_list("txid", "id").get()
            if last
            else (0, 0)
        )
        events = events.filter(
            Q(txid__gt=last_txid or 0) | Q(txid=last_txid or 0, id__gt=last_id),
            txid__lt=RawSQL("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", []),
        ).order_by("txid", "id")
    else:
        events = events.filter(id__gt=last.event_id if last else 0).order_by("id")
    return list(events.values_list("id", "row_mac")[:limit])


def seal_pending(batch: int = 5000) -> int:
    """Seal up to `batch` events. Returns how many; 0 when another sealer holds the lease.

    The chain covers each event's MAC as written; whether the MAC still matches the
    content is verify_audit's to say, for sealed and unsealed rows alike.
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
        seals = []
        for event_id, row_mac in _pending(last, batch):
            seq += 1
            prev = chain.seal_hash(seq, event_id, prev, row_mac)
            seals.append(
                AuditSeal(
                    seq=seq,
                    event_id=event_id,
                    epoch=AuditSeal.Epoch.HMAC,
                    key_id=kid,
                    hash=prev,
                    sealed_at=now,
                )
            )
        AuditSeal.objects.bulk_create(seals, batch_size=1000)
    return len(seals)


def seal_all(batch: int = 5000) -> int:
    """Seal until nothing sealable is left (tests, checkpoints, the benchmark)."""
    total = 0
    while n := seal_pending(batch):
        total += n
    return total
