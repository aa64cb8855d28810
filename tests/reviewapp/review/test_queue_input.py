"""The review queue and bulk decisions answer any input with a message, never a 500."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from reviewapp.briefs.models import Generation
from tests.conftest import PASSWORD
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_reviewer(client, reviewer):
    client.login(username=reviewer.username, password=PASSWORD)
    return client


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "query, problem",
    [
        ({"since": "2024-02-30"}, "From (since): Enter a valid date."),
        ({"until": "2024-13-01"}, "To (until): Enter a valid date."),
        ({"since": "2024-03-02", "until": "2024-03-01"}, "To (until): is before From"),
        ({"status": "sideways"}, "Status (status): is not one of the offered choices"),
        ({"sort": "random"}, "Sort (sort): is not one of the offered choices"),
        ({"page": "two"}, "Page (page): Enter a whole number."),
        ({"page": "0"}, "Page (page): Ensure this value is greater than or equal to 1."),
        ({"workflow": "bad\x00slug"}, "Workflow (workflow): Null characters are not allowed."),
        ({"submitter": "x" * 151}, "Submitter (submitter): Ensure this value has at most 150"),
    ],
)
def test_a_bad_filter_is_named_on_the_page(as_reviewer, operator, workflows, query, problem):
    awaiting_generation(operator)
    response = as_reviewer.get(reverse("review_queue"), query)
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert len(response.context["page"]) == 0  # nothing a half-read filter would select


def test_good_filters_still_filter(as_reviewer, operator, workflows):
    generation = awaiting_generation(operator)
    today = timezone.now().date().isoformat()
    response = as_reviewer.get(
        reverse("review_queue"), {"since": today, "until": today, "sort": "newest"}
    )
    assert response.status_code == 200 and list(response.context["page"]) == [generation]
    response = as_reviewer.get(reverse("review_queue"), {"until": "2000-01-01"})
    assert list(response.context["page"]) == []
    response = as_reviewer.get(reverse("review_queue"), {"page": "100000000000000000000"})
    assert response.status_code == 200 and list(response.context["page"]) == [generation]


@pytest.mark.parametrize("ids", [["²"], ["100000000000000000000"], ["-1"], ["1e3"], ["9" * 5000]])
def test_bulk_refuses_ids_that_are_not_image_numbers(as_reviewer, operator, workflows, ids):
    generation = awaiting_generation(operator)
    response = as_reviewer.post(reverse("review_bulk"), {"ids": ids, "action": "approve"})
    assert response.status_code == 302 and response.url == reverse("review_queue")
    assert texts(response) == [
        "Images (ids): an image is named by its number (1, 2, 3 …); reload the queue"
    ]
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW


def test_bulk_names_a_missing_choice(as_reviewer, operator, workflows):
    generation = awaiting_generation(operator)
    response = as_reviewer.post(reverse("review_bulk"), {"action": "approve"})
    assert texts(response) == ["Images (ids): Select at least one image."]
    as_reviewer.get(response.url)  # shows, and so clears, the message
    response = as_reviewer.post(reverse("review_bulk"), {"ids": [generation.pk], "action": "x"})
    assert texts(response) == ["Action (action): is not one of the offered choices"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "/review/\x00",
    ],
)
def test_bulk_goes_back_only_to_this_site(as_reviewer, operator, workflows, target):
    generation = awaiting_generation(operator)
    response = as_reviewer.post(
        reverse("review_bulk"), {"ids": [generation.pk], "action": "approve", "return_to": target}
    )
    assert response.status_code == 302 and response.url == reverse("review_queue")


def test_bulk_goes_back_to_the_filtered_queue(as_reviewer, operator, workflows):
    generation = awaiting_generation(operator)
    back = reverse("review_queue") + "?sort=newest&page=2"
    response = as_reviewer.post(
        reverse("review_bulk"), {"ids": [generation.pk], "action": "approve", "return_to": back}
    )
    assert response.url == back
