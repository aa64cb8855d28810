"""A queue that follows its filter: next, previous, position and skip keep the filter and
sort the reviewer chose (carried in the URL), and counts stop at a cap."""

import random
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import resolve, reverse

from reviewapp.briefs.models import Generation
from reviewapp.review import queue as review_queue
from reviewapp.review import services
from reviewapp.review.models import Claim, Decision
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    return client


def shown(response) -> int | None:
    """The generation a redirect leads to (None: back to the queue)."""
    match = resolve(urlsplit(response.url).path)
    return match.kwargs["pk"] if match.url_name == "generation_detail" else None


def test_two_reviewers_drain_one_filtered_queue_without_ever_deciding_the_same_image(
    operator, workflows
):
    mine = [awaiting_generation(operator) for _ in range(40)]
    other_operator = make_user("oscar", "operator")
    outside = [awaiting_generation(other_operator) for _ in range(5)]
    query = f"submitter={operator.username}&sort=newest"
    reviewers = {name: make_user(name, "reviewer") for name in ("ana", "ben")}
    clients = {name: signed_in(user) for name, user in reviewers.items()}
    current, decided = {}, {name: [] for name in reviewers}
    for name, client in clients.items():
        response = client.get(f"{reverse('review_next')}?{query}")
        current[name] = shown(response)
        assert parse_qs(urlsplit(response.url).query) == {
            "submitter": [operator.username],
            "sort": ["newest"],
        }
    # The newest first, and the second reviewer is sent past the one the first holds.
    assert current["ana"] == mine[-1].pk and current["ben"] == mine[-2].pk
    order = random.Random(11)
    while any(current.values()):
        name = order.choice([n for n, pk in current.items() if pk])
        pk = current[name]
        holder = Claim.objects.get(generation_id=pk).holder.username
        assert holder == name, f"{name} was sent to #{pk}, which {holder} holds"
        action = order.choice(["approve", "reject"])
        url = reverse(f"generation_{action}", args=[pk]) + f"?{query}"
        response = clients[name].post(url, {"reason": "off-brand"})
        assert shown(response) != pk, f"{name}'s decision on #{pk} was refused"
        decided[name].append(pk)
        current[name] = shown(response)
        if current[name]:
            # Going on keeps the filter and sort.
            assert parse_qs(urlsplit(response.url).query)["submitter"] == [operator.username]
    ana, ben = set(decided["ana"]), set(decided["ben"])
    assert ana.isdisjoint(ben)
    assert ana | ben == {g.pk for g in mine}
    assert len(decided["ana"]) + len(decided["ben"]) == 40 and ana and ben
    assert Decision.objects.count() == 40  # one decision each, nothing refused or doubled
    assert all(
        g.status == Generation.Status.AWAITING_REVIEW
        for g in Generation.objects.filter(pk__in=[g.pk for g in outside])
    )


def test_next_previous_and_position_follow_the_filter_and_sort(operator, reviewer, workflows):
    items = [awaiting_generation(operator) for _ in range(5)]
    other = make_user("oscar", "operator")
    awaiting_generation(other)  # outside the filter
    client = signed_in(reviewer)
    query = f"submitter={operator.username}&sort=newest"
    middle = items[2]
    response = client.get(reverse("generation_detail", args=[middle.pk]) + f"?{query}")
    context = response.context
    assert str(context["position"]) == "3 of 5"
    assert context["prev"] == items[3]  # newest first: the previous one is newer
    assert context["next"] == items[1]
    page = response.content.decode()
    assert f"after={middle.pk}" in page and "sort=newest" in page
    skip = client.get(f"{reverse('review_next')}?{query}&after={middle.pk}")
    assert shown(skip) == items[1].pk
    assert not Claim.objects.filter(generation=middle).exists()  # skipping gives it back
    # Oldest first (the default), the same image has other neighbours.
    context = client.get(reverse("generation_detail", args=[middle.pk])).context
    assert context["prev"] == items[1] and str(context["position"]) == "3 of 6"


def test_next_wraps_round_to_what_was_skipped(operator, reviewer, workflows):
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    client = signed_in(reviewer)
    assert shown(client.get(f"{reverse('review_next')}?after={second.pk}")) == first.pk


def test_next_passes_by_an_image_the_reviewer_already_approved(operator, reviewer, workflows):
    workflow = workflows["color_swatch"]
    workflow.required_approvals = 2
    workflow.save()
    first, second = awaiting_generation(operator), awaiting_generation(operator)
    services.approve(first, actor=reviewer)
    assert shown(signed_in(reviewer).get(reverse("review_next"))) == second.pk


def test_an_image_outside_the_filter_has_no_position(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    services.approve(generation, actor=make_user("other", "reviewer"))
    response = signed_in(reviewer).get(reverse("generation_detail", args=[generation.pk]))
    assert response.context["position"] is None
    assert "not in this queue" in response.content.decode()


def test_counts_stop_at_the_cap(operator, reviewer, workflows, monkeypatch):
    monkeypatch.setattr(review_queue, "COUNT_CAP", 3)
    items = [awaiting_generation(operator) for _ in range(6)]
    client = signed_in(reviewer)
    response = client.get(reverse("review_queue"))
    assert "3+ awaiting review" in response.content.decode()
    assert str(
        client.get(reverse("generation_detail", args=[items[1].pk])).context["position"]
    ) == ("2 of 3+")
    deep = client.get(reverse("generation_detail", args=[items[5].pk])).context["position"]
    assert deep.index is None and str(deep) == "past the first 3 of 3+"


def test_the_capped_count_is_one_bounded_query(operator, workflows, django_assert_num_queries):
    for _ in range(4):
        awaiting_generation(operator)
    with django_assert_num_queries(1) as captured:
        count = review_queue.capped_count(Generation.objects.all(), 2)
    assert (count.value, count.more, str(count)) == (2, True, "2+")
    assert "LIMIT 3" in captured.captured_queries[0]["sql"]
    assert str(review_queue.capped_count(Generation.objects.all(), 10)) == "4"


def test_a_bad_filter_on_an_image_page_says_so_and_offers_no_neighbours(
    operator, reviewer, workflows
):
    generation = awaiting_generation(operator)
    response = signed_in(reviewer).get(
        reverse("generation_detail", args=[generation.pk]) + "?since=2026-13-45"
    )
    assert response.status_code == 200
    assert response.context["next"] is None and response.context["prev"] is None
    assert "not understood" in response.content.decode()


def test_an_image_claimed_between_the_query_and_the_claim_is_passed_over(
    operator, reviewer, workflows, monkeypatch
):
    from django.http import QueryDict

    from reviewapp.review import claims

    first, second = awaiting_generation(operator), awaiting_generation(operator)
    rq = review_queue.ReviewQueue(reviewer, QueryDict())
    stale = rq.upcoming(None)  # read before anyone held the first
    claims.open_for_review(first, actor=make_user("bob", "reviewer"))
    monkeypatch.setattr(rq, "upcoming", lambda current=None, limit=20: stale)
    assert rq.take_next(None) == second
    assert Claim.objects.get(generation=second).holder == reviewer
