"""A form's key answers only for the decision it made, and only after permission."""

import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviewapp.briefs.models import Generation
from reviewapp.review.models import Decision
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def login(client, user):
    client.logout()
    client.login(username=user.username, password=PASSWORD)


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def two_approvals(workflows):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()


def test_a_replayed_key_is_refused_to_someone_who_may_not_decide(
    client, operator, reviewer, auditor, two_approvals
):
    generation = awaiting_generation(operator)
    key = str(uuid.uuid4())
    url = reverse("generation_approve", args=[generation.pk])
    login(client, reviewer)
    assert client.post(url, {"key": key}).status_code == 302
    for user in (auditor, operator):  # sees the generation, may not decide on it
        login(client, user)
        response = client.post(url, {"key": key})
        assert response.status_code == 403, user.username
    assert Decision.objects.count() == 1


def test_regenerate_with_the_key_of_an_approval_is_refused(
    client, operator, reviewer, two_approvals
):
    generation = awaiting_generation(operator)
    key = str(uuid.uuid4())
    login(client, reviewer)
    client.post(reverse("generation_approve", args=[generation.pk]), {"key": key})
    response = client.post(reverse("generation_regenerate", args=[generation.pk]), {"key": key})
    assert response.status_code == 302
    assert response.url == reverse("generation_detail", args=[generation.pk])
    assert any("already used for another decision" in t for t in texts(response))
    assert not generation.children.exists()


def test_a_key_used_on_another_generation_is_refused(client, operator, reviewer, workflows):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    key = str(uuid.uuid4())
    login(client, reviewer)
    client.post(reverse("generation_approve", args=[first.pk]), {"key": key})
    response = client.post(reverse("generation_approve", args=[second.pk]), {"key": key})
    assert any("already used for another decision" in t for t in texts(response))
    second.refresh_from_db()
    assert second.status == Generation.Status.AWAITING_REVIEW


def test_another_reviewers_key_is_not_their_decision(client, operator, reviewer, two_approvals):
    generation = awaiting_generation(operator)
    key = str(uuid.uuid4())
    url = reverse("generation_approve", args=[generation.pk])
    login(client, reviewer)
    client.post(url, {"key": key})
    login(client, make_user("second", "reviewer"))
    response = client.post(url, {"key": key})
    assert any("already used for another decision" in t for t in texts(response))
    assert generation.decisions.count() == 1


def test_each_form_of_the_detail_page_has_its_own_key(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    login(client, reviewer)
    response = client.get(reverse("generation_detail", args=[generation.pk]))
    keys = response.context["keys"]
    assert len({keys["approve"], keys["reject"], keys["regenerate"]}) == 3
    page = response.content.decode()
    assert all(f'value="{k}"' in page for k in keys.values())
