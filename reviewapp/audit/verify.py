"""Proving the trail complete: recompute the chain, check every unsealed row, compare
with checkpoints kept outside the database.

What this can prove, and what it cannot (the README's Security section says the same):
- an edited sealed or unsealed row, a deleted or reordered sealed row, a row inserted by
  someone without AUDIT_KEY, a rewritten chain: always found, since recomputing a MAC
  needs AUDIT_KEY and the database does not hold it;
- the newest sealed rows deleted together with their seals: found only back to the
  newest checkpoint (`verify_audit --checkpoint FILE`); without one the shorter chain is
  self-consistent;
- the whole trail deleted, or its beginning: found when a checkpoint says it had those
  rows, or when the database still holds an object whose creation is always audited and
  is older than the oldest event (a workflow, a brief);
- rows not yet sealed (the tail the sealer has not reached) can be deleted unseen: the
  sealer runs every few seconds, so that window is short, and the report names its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django.apps import apps
from django.db import connection
from django.db.models import Max

from reviewapp.audit import chain
from reviewapp.audit.models import AuditEvent, AuditSeal

# Objects whose creation always writes an audit event: rows of these with an empty trail
# mean the trail was emptied. App labels, so the audit app imports none of them.
EVIDENCE_MODELS = ("catalog.Workflow", "briefs.Brief")
# An object's event is written in the transaction that creates it, moments later.
BEGINNING_GRACE = timedelta(minutes=1)


@dataclass
class Report:
    sealed: int = 0
    unsealed: int = 0
    head_seq: int = 0
    head_hash: str = chain.GENESIS
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        self.problems.append(message)


def _label(event: AuditEvent) -> str:
    return f"event #{event.pk} ({event.action} at {event.created_at:%Y-%m-%d %H:%M:%S})"


def _check_seals(report: Report) -> None:
    prev, expected_seq, kid = chain.GENESIS, 1, chain.key_id()
    seals = AuditSeal.objects.select_related("event").order_by("seq")
    for seal in seals.iterator(chunk_size=2000):
        event = seal.event
        if seal.seq != expected_seq:
            report.fail(
                f"sealed events #{expected_seq}..#{seal.seq - 1} are missing "
                f"(the chain jumps from #{expected_seq - 1} to #{seal.seq})"
            )
            return
        if seal.epoch == AuditSeal.Epoch.SHA256:
            ok_link = event.legacy_prev_hash == prev
            ok_row = chain.legacy_hash(event) == event.legacy_hash == seal.hash
        else:
            if seal.key_id != kid:
                report.fail(
                    f"sealed #{seal.seq} onwards were sealed with another AUDIT_KEY (key id "
                    f"{seal.key_id}; this server's is {kid}): verify with the key that sealed them"
                )
                return
            ok_link = chain.seal_hash(seal.seq, event.pk, prev, event.row_mac) == seal.hash
            ok_row = chain.event_mac(event) == event.row_mac
        if not ok_row:
            report.fail(f"sealed #{seal.seq}: {_label(event)}: its content was changed")
            return
        if not ok_link:
            report.fail(
                f"sealed #{seal.seq}: {_label(event)}: the chain does not lead to it "
                "(an earlier sealed event was changed, removed or reordered)"
            )
            return
        prev, expected_seq = seal.hash, expected_seq + 1
    report.sealed, report.head_seq, report.head_hash = expected_seq - 1, expected_seq - 1, prev


def _check_unsealed(report: Report) -> None:
    unsealed = AuditEvent.objects.filter(seal__isnull=True).order_by("id")
    report.unsealed = unsealed.count()
    if not report.unsealed:
        return
    last = AuditSeal.objects.select_related("event").order_by("-seq").first()
    for event in unsealed.iterator(chunk_size=2000):
        if event.row_mac == "" or chain.event_mac(event) != event.row_mac:
            report.fail(
                f"unsealed {_label(event)} does not match its MAC: it was changed, "
                "or written without AUDIT_KEY"
            )
            return
        if last is not None and _precedes(event, last.event):
            report.fail(
                f"unsealed {_label(event)} sits before sealed event #{last.seq} in commit "
                "order: it was inserted outside the application"
            )
            return
    oldest = unsealed.first()
    report.notes.append(
        f"{report.unsealed} events not sealed yet (the oldest from "
        f"{oldest.created_at:%Y-%m-%d %H:%M:%S}); run the sealer (manage.py seal_audit)"
    )


def _precedes(event: AuditEvent, sealed: AuditEvent) -> bool:
    if connection.vendor == "postgresql":
        if event.txid is None:
            return True
        return (event.txid, event.pk) < (sealed.txid or 0, sealed.pk)
    return event.pk < sealed.pk


def _check_beginning(report: Report) -> None:
    """The trail must reach back to the oldest object whose creation is always audited:
    a trail emptied (or cut at its start) and begun again shows here even without a
    checkpoint, as long as such objects remain."""
    oldest = AuditEvent.objects.order_by("created_at").values_list("created_at", flat=True)
    oldest = oldest.first()
    for label in EVIDENCE_MODELS:
        model = apps.get_model(label)
        first = model.objects.order_by("created_at", "pk").first()
        if first is None:
            continue
        name = model._meta.verbose_name
        if oldest is None:
            count = model.objects.count()
            report.fail(
                f"the trail is empty, but {count} {model._meta.verbose_name_plural} exist "
                "and each was audited when created: the events were deleted"
            )
            return
        if oldest > first.created_at + BEGINNING_GRACE:
            report.fail(
                f"the trail begins at {oldest:%Y-%m-%d %H:%M:%S}, but {name} #{first.pk} was "
                f"created at {first.created_at:%Y-%m-%d %H:%M:%S} and audited then: the "
                "events before were deleted"
            )
            return


def read_checkpoints(path) -> list[dict]:
    """The checkpoints in a file of JSON lines, oldest first. Raises ValueError naming the
    line that is not a checkpoint."""
    checkpoints = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                cp = json.loads(line)
            except ValueError:
                cp = None
            if not (
                isinstance(cp, dict)
                and isinstance(cp.get("seq"), int)
                and isinstance(cp.get("hash"), str)
                and isinstance(cp.get("mac"), str)
            ):
                raise ValueError(f"{path}, line {n}: not an audit checkpoint")
            checkpoints.append(cp)
    return checkpoints


def _check_checkpoints(report: Report, checkpoints: list[dict]) -> None:
    for cp in checkpoints:
        where = f"checkpoint of {cp.get('written_at', '?')} (sealed #{cp['seq']})"
        if chain.checkpoint_mac(cp) != cp["mac"]:
            report.fail(f"{where}: its signature does not match (edited, or another AUDIT_KEY)")
            continue
        seq = int(cp["seq"])
        if seq == 0:
            continue
        seal = AuditSeal.objects.filter(seq=seq).first()
        if seal is None:
            top = AuditSeal.objects.aggregate(top=Max("seq"))["top"] or 0
            report.fail(
                f"{where}: the trail now ends at #{top}: sealed events #{top + 1}..#{seq} "
                "were removed"
            )
        elif seal.hash != cp["hash"]:
            report.fail(f"{where}: the chain at #{seq} differs from the checkpoint: rewritten")


def verify(checkpoints: list[dict] | None = None) -> Report:
    report = Report()
    _check_seals(report)
    if report.intact:
        _check_unsealed(report)
    if report.intact:
        _check_beginning(report)
    _check_checkpoints(report, checkpoints or [])
    return report


def checkpoint(written_at: str) -> dict:
    """A signed statement of the sealed head, to be kept outside the database."""
    last = AuditSeal.objects.order_by("-seq").first()
    payload = {
        "seq": last.seq if last else 0,
        "hash": last.hash if last else chain.GENESIS,
        "sealed_at": last.sealed_at.isoformat() if last else None,
        "written_at": written_at,
        "key_id": chain.key_id(),
    }
    payload["mac"] = chain.checkpoint_mac(payload)
    return payload
