"""A rejection's reason is readable text: bounded, visible, without control characters.
The same rule for a single reject and a bulk reject."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviewapp.briefs.models import Generation
from reviewapp.review import services
from reviewapp.review.models import Decision
from tests.conftest import PASSWORD
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_reason_longer_than_the_limit_is_refused_not_cut(operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="2,001 characters long; at most 2,000"):
        services.reject(generation, actor=reviewer, reason="x" * 2001)
    decision = services.reject(generation, actor=reviewer, reason="y" * 2000)
    assert decision.reason == "y" * 2000


@pytest.mark.parametrize(
    "reason",
    ["\u200b", " \u200b\u200d ", "\ufeff\u2060", "\u3164", "\u2800\u2800", "\u0301"],
)
def test_a_reason_of_only_invisible_characters_is_refused(operator, reviewer, workflows, reason):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="only invisible characters"):
        services.reject(generation, actor=reviewer, reason=reason)
    with pytest.raises(services.DecisionRefused):
        services.reject(generation, actor=reviewer, reason=reason, tags=["Off-brand"])
    assert not Decision.objects.exists()


@pytest.mark.parametrize("reason", ["   ", "\u00a0\u3000", "\n\t"])
def test_a_whitespace_reason_is_no_reason(operator, reviewer, workflows, reason):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="needs a reason"):
        services.reject(generation, actor=reviewer, reason=reason)
    decision = services.reject(generation, actor=reviewer, reason=reason, tags=["Off-brand"])
    assert decision.reason == ""


@pytest.mark.parametrize("reason", ["bad\x00text", "esc\x1b[31m", "rtl \u202eevil", "bell\x07"])
def test_control_characters_inside_a_reason_are_refused(operator, reviewer, workflows, reason):
    generation = awaiting_generation(operator)
    with pytest.raises(services.DecisionRefused, match="control character"):
        services.reject(generation, actor=reviewer, reason=reason)


def test_readable_reasons_pass_as_written(operator, reviewer, workflows):
    reason = "Hand has six fingers 👍🏽\nsee the left corner\tplease"
    decision = services.reject(awaiting_generation(operator), actor=reviewer, reason=reason)
    assert decision.reason == reason


def test_a_nul_in_a_posted_reason_is_a_clear_refusal(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("generation_reject", args=[generation.pk]), {"reason": "bad\x00reason"}
    )
    assert response.status_code == 302
    assert any("control character (U+0000)" in t for t in texts(response))
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW


def test_bulk_reject_refuses_a_bad_reason_once_and_decides_nothing(
    client, operator, reviewer, workflows
):
    generations = [awaiting_generation(operator) for _ in range(3)]
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("review_bulk"),
        {"ids": [g.pk for g in generations], "action": "reject", "reason": "no\x00pe"},
    )
    assert response.status_code == 302
    assert texts(response) == ["the reason contains a control character (U+0000); remove it"]
    response = client.post(
        reverse("review_bulk"),
        {"ids": [g.pk for g in generations], "action": "reject", "reason": "z" * 2001},
    )
    assert any("at most 2,000" in t for t in texts(response))
    assert not Generation.objects.filter(status=Generation.Status.REJECTED).exists()


def test_an_unknown_tag_is_named_by_count_not_echoed(client, operator, reviewer, workflows):
    generation = awaiting_generation(operator)
    client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(
        reverse("generation_reject", args=[generation.pk]), {"tags": ["<x>\x00"]}
    )
    (text,) = texts(response)
    assert text.startswith("1 unknown reason tag(s); pick from:") and "\x00" not in text
