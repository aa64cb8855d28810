"""The waiting line as an operator sees it: a generation no backend can run says why, the
one behind it says where it stands, and the page follows both without a reload."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from comfybridge.sim.process import SimProcess
from reviewapp.briefs import services
from reviewapp.briefs.models import Generation
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import PASSWORD, run_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFINER = "sd_xl_refiner_1.0.safetensors"


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def submit(operator, slug, params):
    version = WorkflowVersion.objects.get(workflow__slug=slug, status="published")
    return services.submit_brief(version, params, actor=operator).generations.get()


def start(generation, *, backend, progress_text=""):
    """What a worker does when a backend takes it: the row's own transitions."""
    generation.refresh_from_db()
    generation.mark_submitting(prompt_id=uuid.uuid4(), backend=backend, run_timeout_s=60)
    generation.mark_running()
    generation.progress, generation.progress_text = 0.4, progress_text
    generation.save()


@pytest.fixture
def lacking_refiner(settings):
    """The one pool's only backend has the SDXL base checkpoint but not the refiner."""
    with SimProcess(args=("--checkpoints", "sd_xl_base_1.0.safetensors")) as sim:
        settings.COMFYUI_POOLS = {"default": (sim.url,)}
        yield sim


def test_the_brief_page_shows_why_it_waits_and_follows_the_line(
    page, screenshot, live_server, operator, workflows, rq_queue, lacking_refiner
):
    sdxl = {"prompt": "a lighthouse at dusk", "seed": 7, "width": 768, "height": 768, "steps": 10}
    first = submit(operator, "sdxl_base_refiner", sdxl)
    run_worker(rq_queue)  # no backend of the pool can run it: it stays queued, with the reason
    first.refresh_from_db()
    assert first.status == Generation.Status.QUEUED and REFINER in first.waiting_reason
    second = submit(operator, "color_swatch", {"color": 0x2F5BEA, "width": 64, "height": 64})

    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/briefs/{first.brief_id}/")
    card = page.locator(f'[data-generation="{first.pk}"]')
    expect(card.locator("[data-place]")).to_have_text("1st in line in pool default")
    expect(card.locator("[data-waiting]")).to_have_text(
        f"Waiting: no backend in pool default has checkpoint '{REFINER}'"
    )
    expect(card.locator("[data-progress]")).to_be_hidden()
    screenshot("brief_waiting")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot("brief_waiting_390")
    # Nothing sticks out of a phone's width (a long checkpoint name wraps).
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # The reason changes on the row: the card follows without a reload.
    first.mark_waiting("no backend in pool default is ready")
    first.save(update_fields=["waiting_reason", "updated_at"])
    expect(card.locator("[data-waiting]")).to_have_text(
        "Waiting: no backend in pool default is ready", timeout=15_000
    )

    page.goto(f"{live_server.url}/generations/{first.pk}/")
    expect(page.locator("#run-state [data-waiting]")).to_have_text(
        "Waiting: no backend in pool default is ready"
    )
    expect(page.locator("#run-state [data-place]")).to_have_text("1st in line in pool default")
    screenshot("generation_waiting")

    page.goto(f"{live_server.url}/briefs/{second.brief_id}/")
    card = page.locator(f'[data-generation="{second.pk}"]')
    expect(card.locator("[data-place]")).to_have_text(
        "2nd in line in pool default · no estimate yet"
    )
    expect(card.locator("[data-waiting]")).to_be_hidden()

    # The one ahead leaves the line: this one moves up.
    services.cancel_generation(first, actor=operator)
    expect(card.locator("[data-place]")).to_have_text(
        "1st in line in pool default · no estimate yet", timeout=10_000
    )

    # A backend takes it: no place in line any more, a progress bar instead.
    start(second, backend=lacking_refiner.url, progress_text="step 4 of 10")
    expect(card.locator("[data-status]")).to_have_text("Running", timeout=10_000)
    expect(card.locator("[data-place]")).to_be_hidden()
    expect(card.locator("[data-progress]")).to_be_visible()
    expect(card.locator("[data-progress-text]")).to_have_text("step 4 of 10")
    screenshot("brief_running")

    # Its own page reloads once its status changes.
    page.goto(f"{live_server.url}/generations/{second.pk}/")
    expect(page.locator("#run-state [data-progress-text]")).to_have_text("step 4 of 10")
    services.cancel_generation(second, actor=operator)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancelled", timeout=10_000)
    expect(page).to_have_url(re.compile(f"/generations/{second.pk}/$"))
