"""The audit trail's filters and CSV export: forged request ids, formulas, odd dates."""

import csv
import io
import uuid

import pytest
from django.urls import reverse

from reviewapp.audit import actions
from reviewapp.audit.context import reset_request_context, set_request_context
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import record
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def export(client, auditor, **query):
    client.login(username=auditor.username, password=PASSWORD)
    response = client.get(reverse("audit_export"), query)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    "forged",
    [
        '=HYPERLINK("https://evil.example","x")',
        "+1+1",
        "-2",
        "@SUM(A1)",
        "a b",
        "x" * 65,
        "id\u00e9",
        ".hidden",
    ],
)
def test_a_malformed_request_id_is_replaced(client, operator, reviewer, workflows, forged):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("generation_approve", args=[generation.pk]), HTTP_X_REQUEST_ID=forged
    )
    event = AuditEvent.objects.get(action="generation.approved")
    assert event.request_id != forged and len(event.request_id) == 32
    assert response["X-Request-ID"] == event.request_id


@pytest.mark.parametrize("good", [str(uuid.uuid4()), uuid.uuid4().hex, "req-1.2_3", "A" * 64])
def test_a_well_formed_request_id_is_kept(client, operator, reviewer, workflows, good):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("generation_approve", args=[generation.pk]), HTTP_X_REQUEST_ID=good
    )
    assert AuditEvent.objects.get(action="generation.approved").request_id == good
    assert response["X-Request-ID"] == good


def test_the_export_writes_no_formula(client, auditor, workflows):
    # Usernames may start with + - @; a request id from before ids were checked may be
    # anything. Both reach the export through the trail as stored.
    plus = make_user("+cmd")
    token = set_request_context({"request_id": "=1+1", "ip": None})
    try:
        record(
            actions.GENERATION_APPROVAL,
            actor=plus,
            target=None,
            changes={"note": "=2+2"},
            workflow_slug="@wf",
        )
    finally:
        reset_request_context(token)
    (row,) = export(client, auditor, action=actions.GENERATION_APPROVAL)
    assert row["actor"] == "'+cmd" and row["request_id"] == "'=1+1"
    assert row["workflow"] == "'@wf"
    assert row["changes"] == '{"note": "=2+2"}'  # starts with "{": a spreadsheet shows text


@pytest.mark.parametrize(
    "query, problem",
    [
        ({"since": "2024-02-30"}, "From (since): Enter a valid date."),
        ({"until": "yesterday"}, "To (until): Enter a valid date."),
        ({"actor": "x\x00"}, "Actor (actor): Null characters are not allowed."),
        ({"action": "a" * 65}, "Action (action): Ensure this value has at most 64"),
        ({"page": "1.5"}, "Page (page): Enter a whole number."),
    ],
)
def test_a_bad_audit_filter_is_named(client, auditor, operator, workflows, query, problem):
    awaiting_generation(operator)
    client.login(username=auditor.username, password=PASSWORD)
    response = client.get(reverse("audit_list"), query)
    assert response.status_code == 400 and problem in response.content.decode()
    assert len(response.context["page"]) == 0
    response = client.get(reverse("audit_export"), query)
    assert response.status_code == 400
    text = response.content.decode()
    assert text.startswith("Nothing exported") and problem in text


def test_good_audit_filters_still_filter(client, auditor, operator, workflows):
    awaiting_generation(operator)
    rows = export(client, auditor, action="brief.submitted", since="2000-01-01")
    assert [r["action"] for r in rows] == ["brief.submitted"]
    assert export(client, auditor, until="2000-01-01") == []
