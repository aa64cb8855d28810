"""Two reviewers in two browsers on one filtered queue: claims keep them apart, undo
brings a decision back, regenerate is a decision, and the auditor only reads."""

import re
import time

import pytest
from playwright.sync_api import expect

from reviewapp.briefs.models import Generation
from reviewapp.review.models import Claim
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_governance import log_in, seed_awaiting
from tests.conftest import make_user, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_two_reviewers_undo_and_regenerate_in_one_filtered_queue(
    browser, page, screenshot, live_server, operator, reviewer, auditor, workflows, rq_queue, comfy
):
    seed_awaiting(operator, 4)
    run_worker(rq_queue)
    newest_first = list(Generation.objects.order_by("-created_at", "-id"))
    assert all(g.status == "awaiting_review" for g in newest_first)

    # Reviewer one starts on the newest, through the queue's own filter and sort.
    log_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/review/?sort=newest")
    page.click("text=Start reviewing")
    expect(page).to_have_url(re.compile(f"/generations/{newest_first[0].pk}/\\?sort=newest$"))
    expect(page.locator("[data-position]")).to_have_text("1 of 4")

    # Reviewer two, in another browser, sees who holds it and is sent past it.
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    second = other.new_page()
    bob = make_user("bob", "reviewer")
    log_in(second, live_server, bob)
    second.goto(f"{live_server.url}/generations/{newest_first[0].pk}/?sort=newest")
    expect(second.locator(".decide.held")).to_contain_text(f"{reviewer.username} is reviewing")
    expect(second.locator("#reject-form")).to_have_count(0)
    second.screenshot(path=str(ARTIFACTS / "review_held_by_other.png"), full_page=True)
    second.goto(f"{live_server.url}/review/?sort=newest")
    expect(second.locator(".holder")).to_contain_text(f"{reviewer.username} is reviewing")
    second.click("text=Start reviewing")
    expect(second).to_have_url(re.compile(f"/generations/{newest_first[1].pk}/"))

    # One approves with A and goes on past the image two holds; the undo bar counts down.
    page.keyboard.press("a")
    expect(page).to_have_url(re.compile(f"/generations/{newest_first[2].pk}/\\?sort=newest$"))
    expect(page.locator("#undo")).to_contain_text(f"You approved #{newest_first[0].pk}")
    expect(page.locator("[data-undo-left]")).to_contain_text(re.compile(r"\d+ s left"))
    screenshot("review_undo_bar")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("review_undo_bar_390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.keyboard.press("u")
    expect(page).to_have_url(re.compile(f"/generations/{newest_first[0].pk}/\\?sort=newest$"))
    expect(page.locator(".messages")).to_contain_text("awaits review again")
    expect(page.locator("h1 [data-status]")).to_have_text("Awaiting review")
    expect(page.locator(".decisions li.reversed")).to_have_count(1)
    screenshot("review_after_undo")

    # Regenerate is the image's decision: one leaves the queue, the child is on its way.
    page.keyboard.press("g")
    expect(page.locator("#undo")).to_contain_text(f"You regenerated #{newest_first[0].pk} as #")
    parent = Generation.objects.get(pk=newest_first[0].pk)
    assert parent.status == Generation.Status.REJECTED
    # Leaving an image gives it back (the page's beacon).
    held = Claim.objects.get(holder=reviewer).generation_id
    page.goto(f"{live_server.url}/review/?sort=newest")
    assert until(lambda: not Claim.objects.filter(generation_id=held, holder=reviewer).exists())
    screenshot("review_queue_claimed")
    other.close()

    # The auditor reads the queue and an image, and has nothing to decide with.
    page.click("text=Log out")
    log_in(page, live_server, auditor)
    page.goto(f"{live_server.url}/review/?status=all")
    expect(page.locator(".gen-card")).to_have_count(5)
    expect(page.locator("text=Approve selected")).to_have_count(0)
    screenshot("review_queue_auditor")
    page.click("text=Open the first")
    expect(page.locator(".lineage")).to_be_visible()
    expect(page.locator("form[data-key]")).to_have_count(0)
    screenshot("review_detail_auditor")
