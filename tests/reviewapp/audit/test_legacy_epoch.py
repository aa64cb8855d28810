"""Rows written under the first, plain SHA-256 chain stay verifiable after the upgrade."""

import hashlib
import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reviewapp.audit.models import AuditEvent, AuditSeal
from reviewapp.audit.sealer import seal_all
from reviewapp.audit.services import record

BEFORE = [("audit", "0002_append_only_trigger")]


def _old_hash(row: dict, prev: str) -> str:
    """The first epoch's hash, as the code of that epoch computed it."""
    payload = {**row, "prev_hash": prev}
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def _write_old_trail(apps, n: int) -> None:
    OldEvent = apps.get_model("audit", "AuditEvent")
    OldChain = apps.get_model("audit", "AuditChain")
    prev = "0" * 64
    for i in range(n):
        row = {
            "created_at": datetime(2026, 11, 1, 12, i, tzinfo=UTC),
            "actor_ref": None,
            "actor_name": "system",
            "action": "generation.queued",
            "target_type": "briefs.generation",
            "target_id": str(i + 1),
            "workflow_slug": "color_swatch",
            "changes": {"n": i},
            "request_id": "",
            "ip": None,
        }
        digest = _old_hash({**row, "created_at": row["created_at"].isoformat()}, prev)
        OldEvent.objects.create(**row, prev_hash=prev, hash=digest)
        prev = digest
    OldChain.objects.create(pk=1, last_hash=prev)


@pytest.fixture
def upgraded_trail(transactional_db):
    """Five events written by the old code, then the migration, then new events."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("audit")
    executor.migrate(BEFORE)
    try:
        _write_old_trail(executor.loader.project_state(BEFORE).apps, 5)
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    except BaseException:
        MigrationExecutor(connection).migrate(latest)
        raise
    record("test.after_upgrade", actor=None, target=None)
    record("test.after_upgrade", actor=None, target=None)
    seal_all()


def test_the_old_rows_are_sealed_as_the_first_epoch_and_verify(upgraded_trail, capsys):
    epochs = list(AuditSeal.objects.order_by("seq").values_list("epoch", flat=True))
    assert epochs == [0, 0, 0, 0, 0, 1, 1]
    call_command("verify_audit")
    assert "intact: 7 sealed events" in capsys.readouterr().out


def test_rewriting_the_old_epoch_breaks_the_first_link_of_the_new(upgraded_trail):
    """Without a key the old chain can be recomputed after an edit; the first HMAC seal
    covers the old head's hash, so the rewrite shows there."""
    events = list(AuditEvent.objects.order_by("id"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        prev = events[1].legacy_prev_hash
        for event in events[1:5]:
            event.actor_name = "mallory" if event == events[1] else event.actor_name
            event.legacy_prev_hash = prev
            row = {
                "created_at": event.created_at.isoformat(),
                "actor_ref": event.actor_ref,
                "actor_name": event.actor_name,
                "action": event.action,
                "target_type": event.target_type,
                "target_id": event.target_id,
                "workflow_slug": event.workflow_slug,
                "changes": event.changes,
                "request_id": event.request_id,
                "ip": event.ip,
            }
            prev = _old_hash(row, prev)
            cursor.execute(
                "UPDATE audit_auditevent SET actor_name = %s, legacy_prev_hash = %s,"
                " legacy_hash = %s WHERE id = %s",
                [event.actor_name, event.legacy_prev_hash, prev, event.pk],
            )
            cursor.execute(
                "UPDATE audit_auditseal SET hash = %s WHERE event_id = %s", [prev, event.pk]
            )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match=r"sealed #6: .*the chain does not lead to it"):
        call_command("verify_audit")
