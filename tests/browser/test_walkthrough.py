"""A person's walk through the product in a real browser: submit, watch, review."""

import re

import pytest
from playwright.sync_api import expect

from reviewapp.briefs.models import Generation
from tests.conftest import PASSWORD, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def test_operator_submits_and_reviewer_decides(
    page, screenshot, live_server, operator, reviewer, workflows, rq_queue, comfy
):
    log_in(page, live_server, operator)
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    screenshot("workflows")
    page.locator("article", has_text="color_swatch").get_by_role("link", name="New brief").click()

    page.fill("#id_color", "#ff8000")
    page.fill("#id_width", "2000")
    page.click("button[type=submit]")
    expect(page.locator(".field.has-errors")).to_contain_text("less than or equal to 1024")
    screenshot("brief_form_error")
    page.fill("#id_width", "128")
    page.click("button[type=submit]")

    expect(page).to_have_url(re.compile(r"/briefs/\d+/$"))
    expect(page.locator("[data-status]").first).to_have_text("Queued")
    run_worker(rq_queue)
    # The page polls: no reload needed to see the result.
    expect(page.locator("[data-status]").first).to_have_text("Awaiting review", timeout=10_000)
    expect(page.locator(".gen-card .thumb img")).to_be_visible()
    screenshot("brief_detail")

    page.click("text=Log out")
    log_in(page, live_server, reviewer)
    expect(page.get_by_role("heading", name=re.compile("Review queue"))).to_be_visible()
    screenshot("review_queue")
    page.locator(".gen-card .thumb").first.click()
    detail_url = page.url
    page.fill("#reason", "orange is off-brand")
    page.click("#reject-form button.danger")
    expect(page.locator("#undo")).to_contain_text("You rejected")
    expect(page.locator(".messages")).to_contain_text("Nothing left for you in this queue")
    page.goto(detail_url)
    screenshot("generation_rejected")

    page.click("text=Run again")
    expect(page.locator(".messages")).to_contain_text("Running again as")
    child = Generation.objects.get(parent__isnull=False)
    assert child.status == Generation.Status.QUEUED
