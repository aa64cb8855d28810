import pytest
from django.urls import reverse

from reviewapp.briefs.models import Generation
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def test_anonymous_users_are_sent_to_login(client, workflows):
    for name in ("workflow_list", "brief_list", "review_queue", "audit_list"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_an_operator_cannot_decide(client, operator, workflows):
    generation = awaiting_generation(operator)
    as_user(client, operator)
    assert client.get(reverse("review_queue")).status_code == 403
    response = client.post(reverse("generation_approve", args=[generation.pk]))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    assert response.status_code == 403


def test_a_reviewer_cannot_submit(client, reviewer, workflows):
    as_user(client, reviewer)
    assert client.get(reverse("brief_new", args=["color_swatch"])).status_code == 403
    response = client.post(reverse("brief_new", args=["color_swatch"]), {"color": "#000000"})
    assert response.status_code == 403


def test_someone_with_both_roles_may_do_both_but_not_on_their_own_brief(client, workflows):
    both = make_user("bo", "operator", "reviewer")
    generation = awaiting_generation(both)
    as_user(client, both)
    assert client.get(reverse("brief_new", args=["color_swatch"])).status_code == 200
    client.post(reverse("generation_approve", args=[generation.pk]))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW


def test_self_review_may_be_allowed_by_setting(client, settings, workflows):
    settings.ALLOW_SELF_REVIEW = True
    both = make_user("bo", "operator", "reviewer")
    generation = awaiting_generation(both)
    as_user(client, both)
    client.post(reverse("generation_approve", args=[generation.pk]))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED


def test_operators_see_only_their_own_briefs(client, operator, workflows):
    other = make_user("otto", "operator")
    mine = awaiting_generation(operator)
    theirs = awaiting_generation(other)
    as_user(client, operator)
    assert client.get(reverse("brief_detail", args=[mine.brief_id])).status_code == 200
    assert client.get(reverse("brief_detail", args=[theirs.brief_id])).status_code == 404
    assert client.get(reverse("generation_detail", args=[theirs.pk])).status_code == 404


def test_only_auditors_read_the_audit_trail(client, operator, auditor, workflows):
    awaiting_generation(operator)
    as_user(client, operator)
    assert client.get(reverse("audit_list")).status_code == 403
    client.logout()
    as_user(client, auditor)
    page = client.get(reverse("audit_list"))
    assert page.status_code == 200 and "brief.submitted" in page.content.decode()


def test_a_double_approve_is_one_decision(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    as_user(client, reviewer)
    client.post(reverse("generation_approve", args=[generation.pk]))
    client.post(reverse("generation_approve", args=[generation.pk]))
    assert generation.decisions.count() == 1
