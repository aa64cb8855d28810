"""A campaign from the browser, end to end: an operator builds a 3 x 4 matrix of product
shots and scenes on the model-free mockup workflow, sees its count and estimate, submits,
watches it run (pausing and resuming it); a reviewer approves a row, rejects a column with
a tag, regenerates the rejected cells and approves the regenerations in the matrix; the
operator downloads the approved set, whose manifest is checked against the database."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviewapp.briefs import services as briefs
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import scheduler
from reviewapp.campaigns.models import Campaign
from reviewapp.catalog.models import WorkflowVersion
from tests.browser.conftest import ARTIFACTS
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


def test_a_mockup_campaign_from_matrix_to_delivered_set(
    browser, page, screenshot, live_server, operator, reviewer, workflows, rq_queue, comfy,
    settings, tmp_path,
):  # fmt: skip
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
    expect(page.locator("[data-field=eta]")).to_have_text("nothing left to run")
    assert Generation.objects.filter(lane=campaign.lane, status="awaiting_review").count() == 12
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("campaign_done_390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # A reviewer, in another browser, works the matrix: products as rows, scenes as columns.
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    rpage = other.new_page()
    log_in(rpage, live_server, reviewer)
    rpage.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    rpage.click("text=Review as a matrix")
    expect(rpage.locator(".cell")).to_have_count(12)
    expect(rpage.locator(".cell img")).to_have_count(12)
    rpage.screenshot(path=str(ARTIFACTS / "campaign_matrix.png"), full_page=True)
    mug = rpage.locator(".row-head", has_text="mug")
    mug.locator("button[data-act=approve]").click()
    expect(rpage.locator("[data-message]")).to_contain_text("Approved 4 cells")
    night = rpage.locator(".col-head", has_text="night")
    night.locator("button[data-act=reject]").click()
    expect(rpage.locator("#reject-dialog")).to_be_visible()
    rpage.keyboard.press("1")  # the first reason tag
    rpage.click("#reject-dialog button[value=confirm]")
    # The approved mug stays approved: two of the column are rejected, one refused.
    expect(rpage.locator("[data-message]")).to_contain_text(
        "Rejected 2 cells · 1 refused: mug, night: Generation #"
    )
    expect(rpage.locator(".cell .status-approved")).to_have_count(4)
    expect(rpage.locator(".cell .status-rejected")).to_have_count(2)
    rpage.screenshot(path=str(ARTIFACTS / "campaign_matrix_decided.png"), full_page=True)
    rpage.set_viewport_size({"width": 390, "height": 844})
    rpage.screenshot(path=str(ARTIFACTS / "campaign_matrix_390.png"), full_page=True)
    rpage.set_viewport_size({"width": 1400, "height": 1000})
    rpage.click("text=Regenerate every rejected cell")
    expect(rpage.locator("[data-message]")).to_contain_text("Regenerated 2 cells")
    rejected = list(Generation.objects.filter(lane=campaign.lane, status="rejected").order_by("id"))
    assert [d.tags for g in rejected for d in g.decisions.filter(action="reject")] == [
        ["Off-brand"],
        ["Off-brand"],
    ]
    for _ in range(2):
        scheduler.tick()
        run_worker(rq_queue)
    children = list(Generation.objects.filter(parent__in=rejected).order_by("id"))
    assert [c.status for c in children] == ["awaiting_review"] * 2
    assert all(c.params["seed"] != c.parent.params["seed"] for c in children)
    # Approve the regenerations from the keyboard: to the night column, down, A.
    rpage.reload()
    expect(rpage.locator(".cell img")).to_have_count(12)
    rpage.locator("#matrix").focus()
    for key in ("ArrowRight",) * 3 + ("ArrowDown",):
        rpage.keyboard.press(key)
    expect(rpage.locator(".cell.focus")).to_contain_text("regenerated")
    rpage.keyboard.press("a")
    expect(rpage.locator(".cell .status-approved")).to_have_count(5)
    rpage.keyboard.press("ArrowDown")
    rpage.keyboard.press("a")
    expect(rpage.locator(".cell .status-approved")).to_have_count(6)
    expect(rpage.locator("[data-message]")).to_contain_text("Approved 1 cell")
    assert {c.status for c in Generation.objects.filter(pk__in=[c.pk for c in children])} == {
        "approved"
    }
    # A cell opens its full page, which leads back to the same place.
    rpage.locator(".cell.focus a").click()
    expect(rpage).to_have_url(re.compile(r"/generations/\d+/\?back="))
    rpage.click("[data-back]")
    expect(rpage.locator(".cell.focus")).to_have_attribute("id", re.compile(r"cell-11"))
    other.close()

    # Time passes beyond the undo window; the operator downloads the approved set.
    Generation.objects.filter(lane=campaign.lane, status="approved").update(
        decided_at=timezone.now() - timedelta(minutes=1)
    )
    page.reload()
    with page.expect_download() as download:
        page.click("text=Download approved set (ZIP)")
    path = tmp_path / "set.zip"
    download.value.save_as(path)
    archive = zipfile.ZipFile(path)
    manifest = json.loads(archive.read("manifest.json"))
    approved = {
        g.brief.cell.index + 1: g
        for g in Generation.objects.filter(lane=campaign.lane, status="approved")
        .select_related("brief__cell")
        .order_by("id")
    }  # the latest approved per cell (regenerations come later)
    assert {e["cell"]: e["generation"] for e in manifest["cells"]} == {
        cell: g.pk for cell, g in approved.items()
    }
    for entry in manifest["cells"]:
        generation = approved[entry["cell"]]
        assert entry["coordinates"] == generation.brief.cell.coords
        assert entry["parameters"] == generation.params
        assert entry["approved_by"] == [reviewer.username]
        product = entry["inputs"]["product"]
        assert product["file"] == f"{entry['coordinates']['product']}.png"
        (original,) = entry["files"]
        assert hashlib.sha256(archive.read(original["path"])).hexdigest() == original["sha256"]
    assert manifest["campaign"]["checksum"] == campaign.workflow_version.checksum
    assert len(manifest["cells"]) == 6  # the mug row, and the two regenerated night cells
    assert len(archive.read("manifest.csv").decode().strip().splitlines()) == 1 + 6
