"""The sealed audit trail: what verify_audit finds, and what it says it cannot."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviewapp.audit import chain
from reviewapp.audit.models import AuditEvent, AuditSeal
from reviewapp.audit.sealer import seal_all, seal_pending
from reviewapp.audit.services import record
from reviewapp.audit.verify import verify
from tests.conftest import PASSWORD
from tests.reviewapp.factories import submit_swatch

# Sealing on PostgreSQL needs the writers committed: the sealer never runs inside a
# writer's transaction, so these tests commit (and the tables are emptied after each).
pytestmark = pytest.mark.django_db(transaction=True)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigger is PostgreSQL's"
)


@pytest.fixture
def trail(operator, workflows):
    submit_swatch(operator)
    submit_swatch(operator, color=0x00FF00)
    seal_all()
    return list(AuditEvent.objects.order_by("id"))


def tamper(sql, params=()):
    """Change the tables behind the application's back, as a database owner could
    (on PostgreSQL with triggers and foreign-key checks off)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def verify_fails(match, *args):
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit", *args)


def test_a_clean_trail_verifies(trail, capsys):
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"intact: {len(trail)} sealed events (head #{len(trail)}), 0 not yet sealed" in out


def test_appending_inserts_one_row_and_touches_nothing_shared(trail, operator):
    with CaptureQueriesContext(connection) as queries:
        record("test.event", actor=operator, target=operator)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO")


def test_new_events_wait_unsealed_until_the_sealer_runs(trail, operator, capsys):
    record("test.event", actor=operator, target=None)
    call_command("verify_audit")
    assert "1 events not sealed yet" in capsys.readouterr().out
    assert seal_pending() == 1
    event = AuditEvent.objects.get(action="test.event")
    assert event.seal.seq == len(trail) + 1 and event.target_type == ""


def test_events_and_seals_refuse_update_and_delete(trail):
    event, seal = trail[0], trail[0].seal
    for row, queryset in ((event, AuditEvent.objects), (seal, AuditSeal.objects)):
        with pytest.raises(TypeError):
            row.save()
        with pytest.raises(TypeError):
            row.delete()
        with pytest.raises(TypeError):
            queryset.all().update(pk=1)
        with pytest.raises(TypeError):
            queryset.all().delete()


@postgresql_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %(event)s",
        "DELETE FROM audit_auditevent WHERE id = %(event)s",
        "UPDATE audit_auditseal SET hash = 'x' WHERE seq = %(seq)s",
        "DELETE FROM audit_auditseal WHERE seq = %(seq)s",
        "TRUNCATE audit_auditevent CASCADE",
        "TRUNCATE audit_auditseal",
    ],
)
def test_postgresql_refuses_changes_and_truncate(trail, sql):
    ids = {"event": trail[0].pk, "seq": trail[0].seal.seq}
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL audit.allow_truncate = 'off'")
        cursor.execute(sql, ids)


@postgresql_only
def test_postgresql_sets_the_transaction_id_whatever_the_client_sends(trail):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (created_at, actor_name, action, target_type,"
            " target_id, workflow_slug, changes, request_id, row_mac, legacy_prev_hash,"
            " legacy_hash, txid) VALUES (now(), 'x', 'x', '', '', '', '{}', '', '', '', '', 5)"
            " RETURNING txid"
        )
        (stored,) = cursor.fetchone()
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        assert stored == cursor.fetchone()[0] != 5


def test_an_edited_sealed_row_is_named(trail):
    victim = trail[3]
    tamper("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", victim.pk])
    verify_fails(rf"sealed #{victim.seal.seq}: event #{victim.pk} .*content was changed")


def test_an_edited_unsealed_row_is_named_before_and_after_sealing(trail, operator):
    event = record("test.event", actor=operator, target=None)
    tamper("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", event.pk])
    verify_fails(rf"unsealed event #{event.pk} .*does not match its MAC")
    assert seal_pending() == 1
    verify_fails(rf"sealed #{len(trail) + 1}: event #{event.pk} .*content was changed")


def test_a_row_inserted_without_the_key_is_named_before_and_after_sealing(trail):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (created_at, actor_name, action, target_type,"
            " target_id, workflow_slug, changes, request_id, row_mac, legacy_prev_hash,"
            " legacy_hash) VALUES (%s, 'mallory', 'generation.approved', 'briefs.generation',"
            " '1', '', '{}', '', %s, '', '')",
            [trail[0].created_at, "f" * 64],
        )
    forged = AuditEvent.objects.get(actor_name="mallory")
    verify_fails(rf"unsealed event #{forged.pk} .*does not match its MAC")
    assert seal_pending() == 1
    verify_fails(rf"sealed #{len(trail) + 1}: event #{forged.pk} .*content was changed")


def test_an_edit_with_every_later_hash_recomputed_is_found(trail, settings):
    """The attacker rewrites a row and re-chains everything after it, but without AUDIT_KEY:
    with any other key (here the Django secret) the MACs do not match."""
    victim = trail[2]
    settings.AUDIT_KEY, real_key = settings.SECRET_KEY, settings.AUDIT_KEY
    real_kid = None
    try:
        victim.actor_name = "mallory"
        forged_mac = chain.event_mac(victim)
        prev = AuditSeal.objects.get(seq=victim.seal.seq - 1).hash
        rewrites = []
        for seal in AuditSeal.objects.filter(seq__gte=victim.seal.seq).select_related("event"):
            mac = forged_mac if seal.event_id == victim.pk else seal.event.row_mac
            prev = chain.seal_hash(seal.seq, seal.event_id, prev, mac)
            rewrites.append((prev, seal.seq))
    finally:
        settings.AUDIT_KEY = real_key
        real_kid = chain.key_id()
    tamper(
        "UPDATE audit_auditevent SET actor_name = 'mallory', row_mac = %s WHERE id = %s",
        [forged_mac, victim.pk],
    )
    for new_hash, seq in rewrites:
        tamper(
            "UPDATE audit_auditseal SET hash = %s, key_id = %s WHERE seq = %s",
            [new_hash, real_kid, seq],
        )
    verify_fails(rf"sealed #{victim.seal.seq}: event #{victim.pk} .*content was changed")


def test_a_deleted_sealed_row_leaves_a_gap(trail):
    victim = trail[3]
    tamper("DELETE FROM audit_auditseal WHERE seq = %s", [victim.seal.seq])
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])
    seq = victim.seal.seq
    verify_fails(rf"sealed events #{seq}..#{seq} are missing")


def test_removing_the_newest_sealed_rows_is_found_against_a_checkpoint(trail, tmp_path):
    """Without a checkpoint a shortened chain is self-consistent (the README says so); the
    checkpoint written before the deletion names what went."""
    checkpoints = tmp_path / "audit.checkpoints"
    call_command("audit_checkpoint", "--output", str(checkpoints))
    for event in trail[-3:]:
        tamper("DELETE FROM audit_auditseal WHERE seq = %s", [event.seal.seq])
        tamper("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    call_command("verify_audit")  # the documented limit
    top, last = len(trail) - 3, len(trail)
    verify_fails(
        rf"the trail now ends at #{top}: sealed events #{top + 1}..#{last} were removed",
        "--checkpoint",
        str(checkpoints),
    )


def test_deleting_every_event_is_found(trail):
    tamper("DELETE FROM audit_auditseal")
    tamper("DELETE FROM audit_auditevent")
    verify_fails(r"the trail is empty, but \d+ workflows exist")


def test_an_emptied_trail_is_found_against_a_checkpoint_too(trail, tmp_path):
    checkpoints = tmp_path / "audit.checkpoints"
    call_command("audit_checkpoint", "--output", str(checkpoints))
    tamper("DELETE FROM audit_auditseal")
    tamper("DELETE FROM audit_auditevent")
    verify_fails(r"the trail now ends at #0", "--checkpoint", str(checkpoints))


def test_an_edited_checkpoint_is_refused(trail, tmp_path):
    checkpoints = tmp_path / "audit.checkpoints"
    call_command("audit_checkpoint", "--output", str(checkpoints))
    line = json.loads(checkpoints.read_text())
    line["seq"] = 2
    checkpoints.write_text(json.dumps(line) + "\n")
    verify_fails("signature does not match", "--checkpoint", str(checkpoints))
    checkpoints.write_text("not json\n")
    verify_fails("line 1: not an audit checkpoint", "--checkpoint", str(checkpoints))


def test_checkpoints_pass_while_the_trail_grows(trail, operator, tmp_path, capsys):
    checkpoints = tmp_path / "audit.checkpoints"
    call_command("audit_checkpoint", "--output", str(checkpoints))
    submit_swatch(operator, color=0x0000FF)
    call_command("audit_checkpoint", "--output", str(checkpoints))
    call_command("verify_audit", "--checkpoint", str(checkpoints))
    assert "2 checkpoint(s) matched" in capsys.readouterr().out


def test_a_checkpoint_goes_to_stdout_by_default(trail, capsys):
    call_command("audit_checkpoint")
    line = json.loads(capsys.readouterr().out)
    assert line["seq"] == len(trail) and line["hash"] == trail[-1].seal.hash
    assert line["mac"] == chain.checkpoint_mac(line)


def test_another_audit_key_is_named_as_such(trail, settings):
    settings.AUDIT_KEY = "a-different-key"
    verify_fails("sealed with another AUDIT_KEY")


def test_the_actor_name_survives_the_user(trail, operator):
    operator.briefs.all().delete()
    operator.delete()
    event = AuditEvent.objects.filter(action="brief.submitted").first()
    assert event.actor_id is None and event.actor_name == "olivia"
    call_command("verify_audit")


def test_the_audit_page_shows_seals_and_exports_csv(client, trail, auditor, operator):
    record("test.event", actor=operator, target=None)
    client.login(username=auditor.username, password=PASSWORD)
    page = client.get(reverse("audit_list"), {"action": "brief.submitted"})
    assert page.context["page"].paginator.count == 2
    assert b"pending" not in page.content and f"#{trail[0].seal.seq}".encode() in page.content
    assert b"pending" in client.get(reverse("audit_list")).content
    response = client.get(reverse("audit_export"), {"actor": "olivia"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "time_utc", "actor", "action"]
    assert len(rows) - 1 == AuditEvent.objects.filter(actor_name="olivia").count() > 0
    assert {row[2] for row in rows[1:]} == {"olivia"}
    first = next(e for e in trail if e.actor_name == "olivia")
    row = next(row for row in rows[1:] if int(row[0]) == first.pk)
    assert row[rows[0].index("seq")] == str(first.seal.seq)
    assert row[rows[0].index("seal_hash")] == first.seal.hash


@postgresql_only
def test_an_event_committed_late_is_sealed_after_those_it_preceded(trail):
    """A transaction that began writing first but commits last: while it is open, nothing
    after it in commit order is sealed, so it never lands below the sealed prefix."""
    import threading

    wrote, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                record("test.slow", actor=None, target=None)
                wrote.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert wrote.wait(10)
    record("test.fast", actor=None, target=None)  # committed at once
    assert seal_pending() == 0  # the open transaction may still precede it
    release.set()
    thread.join(10)
    assert seal_pending() == 2
    order = AuditSeal.objects.filter(seq__gt=len(trail)).order_by("seq")
    assert [s.event.action for s in order] == ["test.slow", "test.fast"]
    assert verify().intact


@pytest.mark.parametrize(
    "value",
    [-0.0, 2.5e16, 1e-7, 0.1, 10**30, "a\x00b", "\ud800", float("nan"), float("inf"), (1, 2)],
    ids=repr,
)
def test_values_the_database_rewrites_still_match_their_mac(trail, value):
    """jsonb has no -0 and no exponents, text no NUL, JSON no NaN: whatever the database
    gives back must verify, and the change must be stored, not refused."""
    from reviewapp.audit.context import reset_request_context, set_request_context

    token = set_request_context({"request_id": "r1", "ip": "::102:304"})
    try:
        event = record("test.event", actor=None, target=None, changes={"v": value})
    finally:
        reset_request_context(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert chain.event_mac(stored) == stored.row_mac
    seal_all()
    assert verify().intact


def test_an_emptied_trail_begun_again_is_found(trail):
    """Wipe everything, let the application write again: the new chain starts at #1 and
    is consistent, but it begins after objects that were audited when created."""
    from datetime import timedelta

    from django.utils import timezone

    from reviewapp.briefs.models import Brief

    tamper("DELETE FROM audit_auditseal")
    tamper("DELETE FROM audit_auditevent")
    Brief.objects.update(created_at=timezone.now() - timedelta(hours=1))
    tamper("UPDATE catalog_workflow SET created_at = %s", [timezone.now() - timedelta(hours=1)])
    record("test.after_wipe", actor=None, target=None)
    seal_all()
    verify_fails(r"the trail begins at .* but workflow #\d+ was created at .* events before")


@postgresql_only
def test_a_role_that_is_not_superuser_cannot_truncate_even_with_the_test_switch(trail):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE ROLE audit_probe NOSUPERUSER")
        cursor.execute("GRANT ALL ON audit_auditevent, audit_auditseal TO audit_probe")
        cursor.execute("SET LOCAL ROLE audit_probe")
        cursor.execute("SET LOCAL audit.allow_truncate = 'on'")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute("TRUNCATE audit_auditevent, audit_auditseal")
        transaction.set_rollback(True)  # the role goes with the transaction
