"""Brief pages: a bad page number is named, and cancel goes back only to this site."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "https:evil.example"]
)
def test_cancel_goes_back_only_to_this_site(client, operator, workflows, target):
    generation = submit_swatch(operator).generations.get()
    client.login(username=operator.username, password=PASSWORD)
    response = client.post(
        reverse("generation_cancel", args=[generation.pk]), {"return_to": target}
    )
    assert response.status_code == 302
    assert response.url == reverse("brief_detail", args=[generation.brief_id])


def test_cancel_goes_back_to_the_page_it_came_from(client, operator, workflows):
    generation = submit_swatch(operator).generations.get()
    client.login(username=operator.username, password=PASSWORD)
    back = reverse("generation_detail", args=[generation.pk])
    response = client.post(reverse("generation_cancel", args=[generation.pk]), {"return_to": back})
    assert response.url == back


def test_cancel_over_https_does_not_go_back_over_http(client, operator, workflows, settings):
    settings.SECURE_SSL_REDIRECT = False
    generation = submit_swatch(operator).generations.get()
    client.login(username=operator.username, password=PASSWORD)
    response = client.post(
        reverse("generation_cancel", args=[generation.pk]),
        {"return_to": "http://testserver/briefs/"},
        secure=True,
    )
    assert response.url == reverse("brief_detail", args=[generation.brief_id])


@pytest.mark.parametrize("page", ["x", "0", "-3", "9" * 5000])
def test_the_brief_list_names_a_bad_page(client, operator, workflows, page):
    submit_swatch(operator)
    client.login(username=operator.username, password=PASSWORD)
    response = client.get(reverse("brief_list"), {"page": page})
    assert response.status_code == 400 and "Page (page):" in response.content.decode()


def test_the_brief_list_shows_the_last_page_for_a_huge_number(client, operator, workflows):
    brief = submit_swatch(operator)
    client.login(username=operator.username, password=PASSWORD)
    response = client.get(reverse("brief_list"), {"page": "100000000000000000000"})
    assert response.status_code == 200 and list(response.context["page"]) == [brief]
