import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import verify_chain
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(operator, workflows):
    submit_swatch(operator)
    submit_swatch(operator, color=0x00FF00)
    return list(AuditEvent.objects.order_by("id"))


def test_a_clean_chain_verifies(trail, capsys):
    call_command("verify_audit")
    assert f"intact: {len(trail)} events" in capsys.readouterr().out


def test_events_refuse_update_and_delete(trail):
    event = trail[0]
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


def tamper(sql, params):
    """Change the table behind the application's back, as a database superuser could."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")  # triggers off
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_update_and_delete(trail):
    from django.db import DatabaseError, transaction

    for sql in (
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [trail[0].pk])


def test_an_edited_row_is_named(trail):
    victim = trail[3]
    tamper("UPDATE audit_auditevent SET actor_name = %s WHERE id = %s", ["mallory", victim.pk])
    with pytest.raises(CommandError, match=f"event #{victim.pk} .*content was changed"):
        call_command("verify_audit")


def test_a_deleted_row_is_found_at_its_successor(trail):
    victim, successor = trail[3], trail[4]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])
    _, bad, why = verify_chain()
    assert bad.pk == successor.pk and "predecessor" in why


def test_deleting_the_newest_rows_is_found(trail):
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [trail[-1].pk])
    with pytest.raises(CommandError, match="newest events were deleted"):
        call_command("verify_audit")


def test_the_actor_name_survives_the_user(trail, operator):
    operator.briefs.all().delete()
    operator.delete()
    event = AuditEvent.objects.filter(action="brief.submitted").first()
    assert event.actor_id is None and event.actor_name == "olivia"
    call_command("verify_audit")


def test_the_audit_page_filters_and_exports_csv(client, trail, auditor):
    import csv
    import io

    from django.urls import reverse

    from tests.conftest import PASSWORD

    client.login(username=auditor.username, password=PASSWORD)
    page = client.get(reverse("audit_list"), {"action": "brief.submitted"})
    assert page.context["page"].paginator.count == 2
    response = client.get(reverse("audit_export"), {"actor": "olivia"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "time_utc", "actor", "action"]
    assert len(rows) - 1 == AuditEvent.objects.filter(actor_name="olivia").count() > 0
    assert {row[2] for row in rows[1:]} == {"olivia"}
