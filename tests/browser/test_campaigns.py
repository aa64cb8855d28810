"""An operator's campaign from the browser: a 3 x 4 matrix of product shots and scenes on
the model-free mockup workflow, checked, previewed with its estimate, submitted, and
watched as it runs; paused and resumed from its page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from reviewapp.briefs import services as briefs
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import scheduler
from reviewapp.campaigns.models import Campaign
from reviewapp.catalog.models import WorkflowVersion
from tests.browser.test_governance import log_in
from tests.conftest import run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"


def one_earlier_run(operator, rq_queue):
    """A finished run of the version, so the preview has a measured estimate."""
    version = WorkflowVersion.objects.get(workflow__slug="product_mockup", status="published")
    brief = briefs.submit_brief(
        version,
        {"seed": 1},
        actor=operator,
        files={"product": open(EXAMPLES / "mug.png", "rb")},  # noqa: SIM115
    )
    run_worker(rq_queue)
    assert brief.generations.get().status == "awaiting_review"


def test_an_operator_builds_submits_and_watches_a_mockup_matrix(
    page, screenshot, live_server, operator, workflows, rq_queue, comfy, settings
):
    settings.CAMPAIGN_RELEASE_WINDOW = 4
    one_earlier_run(operator, rq_queue)
    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/workflows/")
    page.locator("article", has_text="Product mockup").get_by_text("New campaign").click()
    expect(page).to_have_url(re.compile("/workflows/product_mockup/campaign/$"))
    page.fill("#id_title", "Spring mockups")
    page.set_input_files(
        "#values-product", [str(EXAMPLES / n) for n in ("mug.png", "tote.png", "cap.png")]
    )
    page.fill(
        "#values-scene",
        "sand = #E8D5B0\nsage = #9CAF88\nstudio = #E6E6E6\nnight = #1B2631",
    )
    page.fill("#values-x", "224")
    page.fill("#values-y", "224")
    page.fill("#values-product_width", "320")
    screenshot("campaign_new_builder")
    page.click("text=Check and preview")

    expect(page.locator("h1")).to_contain_text("Spring mockups")
    expect(page.locator("h2").first).to_have_text("12 cells")
    times = "\N{MULTIPLICATION SIGN}"
    expect(page.locator(f"text=3 product {times} 4 scene = 12 cells")).to_be_visible()
    expect(page.locator("[data-estimate]")).to_contain_text(re.compile(r"≈ \d+ GPU-seconds"))
    expect(page.locator("[data-preview] tbody tr")).to_have_count(12)
    expect(page.locator("[data-preview] tbody tr").nth(1)).to_contain_text("scene: sage")
    screenshot("campaign_draft_preview")
    page.click("text=Submit 12 cells")
    expect(page.locator(".messages")).to_contain_text("Submitted")
    expect(page.locator('[data-count="held"]')).to_have_text("12")

    campaign = Campaign.objects.get()
    # The scheduler and a worker do their rounds; the page follows without a reload.
    scheduler.tick()
    expect(page.locator('[data-count="queued"]')).to_have_text("4")
    run_worker(rq_queue)
    expect(page.locator('[data-count="awaiting_review"]')).to_have_text("4")
    expect(page.locator('[data-count="held"]')).to_have_text("8")
    screenshot("campaign_running")

    page.fill("#pause-reason", "checking the night backdrop")
    page.click("button:text('Pause')")
    expect(page.locator(".notice")).to_contain_text("Paused: checking the night backdrop")
    assert scheduler.tick() == {}
    screenshot("campaign_paused")
    page.click("button:text('Resume')")
    expect(page.locator(".messages")).to_contain_text("Resumed")
    for _ in range(3):
        scheduler.tick()
        run_worker(rq_queue)
    expect(page.locator('[data-count="awaiting_review"]')).to_have_text("12")
    expect(page.locator("[data-field=eta]")).to_have_text("0 s")
    assert Generation.objects.filter(lane=campaign.lane, status="awaiting_review").count() == 12
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("campaign_done_390")
