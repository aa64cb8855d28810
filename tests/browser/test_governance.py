"""Browser journeys of reviewers, workflow admins and auditors."""

import copy
import json
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from reviewapp.briefs import services as briefs
from reviewapp.briefs.models import Generation
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import PASSWORD, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def seed_awaiting(operator, count):
    version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
    for i in range(count):
        briefs.submit_brief(
            version, {"color": (i * 0x0B1D2F) % 0xFFFFFF, "width": 64, "height": 64},
            actor=operator,
        )  # fmt: skip


def test_a_reviewer_clears_twenty_with_the_keyboard_alone(
    page, screenshot, live_server, operator, reviewer, workflows, rq_queue, comfy
):
    seed_awaiting(operator, 20)
    run_worker(rq_queue)
    assert Generation.objects.filter(status="awaiting_review").count() == 20

    log_in(page, live_server, reviewer)
    first = Generation.objects.order_by("created_at", "id").first()
    page.goto(f"{live_server.url}/generations/{first.pk}/")
    page.keyboard.press("?")
    expect(page.locator("dialog#keys")).to_be_visible()
    screenshot("review_keys_help")
    page.keyboard.press("Escape")
    for i in range(20):
        expect(page.get_by_role("heading", level=1)).to_contain_text("Awaiting review")
        if i % 2 == 0:
            page.keyboard.press("a")
        else:
            page.keyboard.press("r")
            page.keyboard.type("colour too dark")
            page.keyboard.press("Enter")
        if i < 19:
            expect(page.locator("#undo")).to_contain_text(re.compile("You (approved|rejected)"))
    expect(page.locator(".messages")).to_contain_text("Nothing left for you in this queue")
    screenshot("review_queue_empty")
    assert Generation.objects.filter(status="approved").count() == 10
    assert Generation.objects.filter(status="rejected").count() == 10
    assert Generation.objects.filter(status="awaiting_review").count() == 0


def test_j_and_k_move_between_items_and_g_regenerates_and_compare_works(
    page, screenshot, live_server, operator, reviewer, workflows, rq_queue, comfy
):
    seed_awaiting(operator, 3)
    run_worker(rq_queue)
    first, second, _ = Generation.objects.order_by("created_at", "id")
    log_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/generations/{first.pk}/")
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(f"/generations/{second.pk}/$"))
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(f"/generations/{first.pk}/$"))
    page.keyboard.press("g")
    expect(page.locator("#undo")).to_contain_text(f"You regenerated #{first.pk} as #")
    child = Generation.objects.get(parent=first)
    run_worker(rq_queue)
    page.goto(f"{live_server.url}/generations/{child.pk}/")
    expect(page.locator(".lineage")).to_contain_text(f"#{first.pk}")
    page.locator(".lineage a", has_text="compare").first.click()
    expect(page.locator(".two-up img")).to_have_count(2)
    screenshot("compare_two_up")
    page.click("text=Slider")
    page.locator("#slider-range").fill("20")
    expect(page.locator("#slider-left")).to_have_attribute("style", re.compile("80%"))
    screenshot("compare_slider")


def test_an_admin_imports_publishes_and_sees_the_diff(
    page, screenshot, live_server, wfadmin, workflows, tmp_path
):
    version = workflows["color_swatch"].published_version
    graph, schema = copy.deepcopy(version.graph), copy.deepcopy(version.schema)
    graph["2"]["inputs"]["sigma"] = 4.0
    (tmp_path / "g.api.json").write_text(json.dumps(graph))
    (tmp_path / "s.schema.json").write_text(json.dumps(schema))

    log_in(page, live_server, wfadmin)
    expect(page.get_by_role("heading", name="Manage workflows")).to_be_visible()
    page.click("text=Import a version")
    page.fill("#id_slug", "color_swatch")
    page.set_input_files("#id_graph", str(tmp_path / "g.api.json"))
    page.set_input_files("#id_schema", str(tmp_path / "s.schema.json"))
    page.click("button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Imported color_swatch v2 (Draft)")
    page.click("text=Publish v2")
    expect(page.locator(".messages")).to_contain_text("v2 is published")
    expect(page.locator("#diff")).to_contain_text("sigma: 1.0 → 4.0")
    screenshot("workflow_diff")


def test_an_auditor_reads_and_filters_the_trail(
    page, screenshot, live_server, operator, auditor, workflows
):
    seed_awaiting(operator, 2)
    log_in(page, live_server, auditor)
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    page.select_option("select[name=action]", "brief.submitted")
    page.click("text=Filter")
    expect(page.locator("table.audit tbody tr")).to_have_count(2)
    screenshot("audit_filtered")
    call_command("verify_audit")
