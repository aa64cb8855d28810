"""Claims: opening an image for review holds it for REVIEW_CLAIM_S; others' "next" passes
it by, its page names the holder, and their decisions on it are refused with that name."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviewapp.briefs.models import Generation
from reviewapp.review import claims, services
from reviewapp.review.models import Claim
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def bob(db):
    return make_user("bob", "reviewer")


def test_opening_an_image_claims_it_and_the_page_names_the_holder(
    operator, reviewer, bob, workflows
):
    generation = awaiting_generation(operator)
    url = reverse("generation_detail", args=[generation.pk])
    signed_in(reviewer).get(url)
    claim = Claim.objects.get(generation=generation)
    assert claim.holder == reviewer and claim.is_live()
    page = signed_in(bob).get(url).content.decode()
    assert f"{reviewer.username}</strong> is reviewing this image" in page
    assert reverse("generation_approve", args=[generation.pk]) not in page
    assert Claim.objects.get(generation=generation).holder == reviewer  # not taken over


def test_a_decision_on_an_image_someone_else_holds_is_refused_with_their_name(
    operator, reviewer, bob, workflows
):
    generation = awaiting_generation(operator)
    claims.open_for_review(generation, actor=reviewer)
    with pytest.raises(services.DecisionRefused, match=f"{reviewer.username} is reviewing"):
        services.approve(generation, actor=bob)
    with pytest.raises(services.DecisionRefused, match=f"{reviewer.username} is reviewing"):
        services.regenerate(generation, actor=bob)
    client = signed_in(bob)
    response = client.post(reverse("generation_reject", args=[generation.pk]), {"reason": "x"})
    assert response.url == reverse("generation_detail", args=[generation.pk])
    assert any(reviewer.username in str(m) for m in get_messages(response.wsgi_request))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    services.approve(generation, actor=reviewer)  # the holder decides
    assert not Claim.objects.filter(generation=generation).exists()  # released


def test_a_claim_expires_on_its_own(operator, reviewer, bob, workflows, settings):
    generation = awaiting_generation(operator)
    claims.open_for_review(generation, actor=reviewer)
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert claims.live_claim(generation) is None
    services.approve(generation, actor=bob)  # nobody holds it any more
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED


def test_an_expired_claim_is_taken_over_by_the_next_reviewer(operator, reviewer, bob, workflows):
    generation = awaiting_generation(operator)
    claims.open_for_review(generation, actor=reviewer)
    Claim.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    claim = claims.open_for_review(generation, actor=bob)
    assert claim.holder == bob and claim.expires_at > timezone.now()


def test_the_open_page_renews_its_claim(operator, reviewer, bob, workflows, settings):
    generation = awaiting_generation(operator)
    client = signed_in(reviewer)
    client.get(reverse("generation_detail", args=[generation.pk]))
    token = Claim.objects.get().token
    Claim.objects.update(expires_at=timezone.now() + timedelta(seconds=3))
    response = client.post(reverse("generation_claim", args=[generation.pk]), {"token": token})
    body = response.json()
    assert body["held"] is True and body["expires_in_s"] > settings.REVIEW_CLAIM_S - 5
    other = signed_in(bob).post(reverse("generation_claim", args=[generation.pk]))
    assert other.json() == {
        "held": False,
        "holder": reviewer.username,
        "expires_in_s": pytest.approx(settings.REVIEW_CLAIM_S, abs=5),
    }


def test_leaving_releases_only_the_claim_that_page_took(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    client = signed_in(reviewer)
    url = reverse("generation_detail", args=[generation.pk])
    client.get(url)
    old_token = Claim.objects.get().token
    client.get(url)  # the page reloaded: a new token
    release = reverse("generation_release", args=[generation.pk])
    assert client.post(release, {"token": old_token}).status_code == 204  # a late beacon
    assert Claim.objects.filter(generation=generation, holder=reviewer).exists()
    client.post(release, {"token": Claim.objects.get().token})
    assert not Claim.objects.exists()


def test_next_passes_by_what_another_reviewer_holds(operator, reviewer, bob, workflows):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    claims.open_for_review(first, actor=reviewer)
    response = signed_in(bob).get(reverse("review_next"))
    assert response.url == reverse("generation_detail", args=[second.pk])
    assert Claim.objects.get(generation=second).holder == bob


def test_the_queue_shows_who_holds_an_image(client, operator, reviewer, bob, workflows):
    generation = awaiting_generation(operator)
    claims.open_for_review(generation, actor=reviewer)
    page = signed_in(bob).get(reverse("review_queue")).content.decode()
    assert f"{reviewer.username} is reviewing" in page


def test_an_auditor_opening_an_image_claims_nothing_and_decides_nothing(
    operator, auditor, reviewer, workflows
):
    generation = awaiting_generation(operator)
    client = signed_in(auditor)
    page = client.get(reverse("generation_detail", args=[generation.pk])).content.decode()
    assert not Claim.objects.exists()
    for name in ("generation_approve", "generation_reject", "generation_regenerate"):
        assert reverse(name, args=[generation.pk]) not in page
    assert f"Lineage of brief #{generation.brief_id}" in page
    queue = client.get(reverse("review_queue"))
    assert queue.status_code == 200 and [g.pk for g in queue.context["page"]] == [generation.pk]
    text = queue.content.decode()
    assert "Approve selected" not in text and 'name="ids"' not in text
    assert client.post(reverse("generation_approve", args=[generation.pk])).status_code == 403
    assert client.post(reverse("generation_claim", args=[generation.pk])).status_code == 403


def test_a_claim_token_from_anyone_else_releases_nothing(operator, reviewer, bob, workflows):
    generation = awaiting_generation(operator)
    claim = claims.open_for_review(generation, actor=reviewer)
    assert not claims.release(generation, actor=bob, token=claim.token)
    assert not claims.release(generation, actor=reviewer, token=uuid.uuid4())
    assert Claim.objects.filter(holder=reviewer).exists()


def test_a_reviewer_whose_approval_stands_does_not_hold_the_image(
    operator, reviewer, bob, workflows
):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    generation = awaiting_generation(operator)
    services.approve(generation, actor=reviewer)
    page = signed_in(reviewer).get(reverse("generation_detail", args=[generation.pk]))
    assert "You approved this" in page.content.decode()
    assert not Claim.objects.exists()  # nothing of theirs to decide: nothing held
    services.approve(generation, actor=bob)  # the second reviewer is not refused
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED


def test_a_release_without_the_pages_token_releases_nothing(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    client = signed_in(reviewer)
    client.get(reverse("generation_detail", args=[generation.pk]))
    response = client.post(reverse("generation_release", args=[generation.pk]), {"token": "x"})
    assert response.status_code == 400
    assert Claim.objects.filter(generation=generation, holder=reviewer).exists()


def test_editing_parameters_keeps_the_image_held(operator, reviewer, bob, workflows):
    generation = awaiting_generation(operator)
    client = signed_in(reviewer)
    client.get(reverse("generation_regenerate_edit", args=[generation.pk]))
    assert Claim.objects.get(generation=generation).holder == reviewer
    response = signed_in(bob).get(reverse("review_next"))
    assert response.url == reverse("review_queue")  # nothing else for bob
