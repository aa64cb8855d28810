"""The whole loop on real parts: form POST -> RQ job on Redis -> simulator -> asset ->
review decision -> audit trail."""

import pytest
from django.urls import reverse
from PIL import Image

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.sealer import seal_all
from reviewapp.audit.verify import verify
from reviewapp.briefs.models import Brief, Generation
from tests.conftest import PASSWORD, run_worker

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_a_brief_goes_from_form_to_approval(
    client, operator, reviewer, workflows, rq_queue, comfy, django_capture_on_commit_callbacks
):
    login(client, operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("brief_new", args=["color_swatch"]),
            {"color": "#ff8000", "width": "96", "height": "64", "blur_radius": "1"},
        )
    brief = Brief.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("brief_detail", args=[brief.pk])
    generation = brief.generations.get()
    assert generation.status == Generation.Status.QUEUED
    assert rq_queue.job_ids == [generation.rq_job_id]

    with django_capture_on_commit_callbacks(execute=True):
        run_worker(rq_queue)

    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    assert generation.backend == comfy.url
    asset = generation.assets.get()
    assert (asset.width, asset.height) == (96, 64)
    with asset.file.open("rb") as fh:
        img = Image.open(fh)
        assert img.convert("RGB").getpixel((48, 32)) == (0xFF, 0x80, 0x00)
    assert asset.thumbnail.name.endswith(".webp")

    status = client.get(reverse("brief_status", args=[brief.pk])).json()
    assert status["generations"][0]["status"] == "awaiting_review"
    assert status["generations"][0]["thumbnails"] == [asset.pk]

    client.logout()
    login(client, reviewer)
    page = client.get(reverse("review_queue"))
    assert reverse("asset_thumbnail", args=[asset.pk]) in page.content.decode()
    response = client.post(reverse("generation_approve", args=[generation.pk]))
    assert response.status_code == 302
    generation.refresh_from_db()
    assert generation.status == Generation.Status.APPROVED

    # Sign-ins and sign-outs are audited too; this journey is about the brief.
    trail = AuditEvent.objects.exclude(action__startswith="auth.").order_by("id")
    actions = list(trail.values_list("action", "actor_name"))
    assert actions[-5:] == [
        ("brief.submitted", "olivia"),
        ("generation.queued", "olivia"),
        ("generation.started", "system"),
        ("generation.awaiting_review", "system"),
        ("generation.approved", "rémi"),
    ]
    seal_all()
    report = verify()
    assert report.intact and report.sealed + report.unsealed == len(AuditEvent.objects.all())


def test_regenerate_runs_a_child_with_a_new_seed(
    client, operator, reviewer, workflows, rq_queue, comfy, django_capture_on_commit_callbacks
):
    from reviewapp.briefs import services
    from reviewapp.catalog.models import WorkflowVersion

    version = WorkflowVersion.objects.get(workflow__slug="sdxl_base_refiner", status="published")
    with django_capture_on_commit_callbacks(execute=True):
        brief = services.submit_brief(
            version,
            {
                "prompt": "a lighthouse at dawn",
                "seed": 12,
                "width": 768,
                "height": 768,
                "steps": 10,
            },
            actor=operator,
        )
    with django_capture_on_commit_callbacks(execute=True):
        run_worker(rq_queue)
    parent = brief.generations.get()
    parent.refresh_from_db()
    assert parent.status == Generation.Status.AWAITING_REVIEW, parent.error

    login(client, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("generation_regenerate", args=[parent.pk]))
    child = Generation.objects.get(parent=parent)
    # Regenerating is the parent's decision: the reviewer goes on (to the empty queue).
    assert response.url == reverse("review_queue")
    parent.refresh_from_db()
    assert parent.status == Generation.Status.REJECTED
    assert child.params["seed"] != 12
    assert {k: v for k, v in child.params.items() if k != "seed"} == {
        k: v for k, v in parent.params.items() if k != "seed"
    }
    with django_capture_on_commit_callbacks(execute=True):
        run_worker(rq_queue)
    child.refresh_from_db()
    assert child.status == Generation.Status.AWAITING_REVIEW, child.error
    assert child.assets.get().sha256 != parent.assets.get().sha256

    page = client.get(reverse("generation_detail", args=[child.pk])).content.decode()
    assert "regenerated from" in page and f"seed: 12 → {child.params['seed']}" in page


def test_reject_needs_a_reason(client, operator, reviewer, workflows):
    from tests.reviewapp.factories import awaiting_generation

    generation = awaiting_generation(operator)
    login(client, reviewer)
    client.post(reverse("generation_reject", args=[generation.pk]), {"reason": "  "})
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW
    client.post(reverse("generation_reject", args=[generation.pk]), {"reason": "wrong colour"})
    generation.refresh_from_db()
    assert generation.status == Generation.Status.REJECTED
    event = AuditEvent.objects.filter(action="generation.rejected").get()
    assert event.changes["reason"] == "wrong colour"


def test_steps_500_is_refused_at_the_field_and_nothing_is_queued(
    client, operator, workflows, rq_queue, django_capture_on_commit_callbacks
):
    login(client, operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("brief_new", args=["sdxl_base_refiner"]),
            {
                "prompt": "p",
                "seed": "1",
                "width": "1024",
                "height": "1024",
                "steps": "500",
                "cfg": "6.5",
            },
        )
    assert response.status_code == 200
    assert "less than or equal to 50" in response.context["form"].errors["steps"][0]
    assert Brief.objects.count() == 0
    assert rq_queue.count == 0


def test_an_inpaint_brief_uploads_its_image_and_mask_to_the_backend(
    client, operator, workflows, rq_queue, comfy, django_capture_on_commit_callbacks
):
    from pathlib import Path

    from django.core.files.uploadedfile import SimpleUploadedFile

    fixtures = Path(__file__).parent.parent / "fixtures"
    login(client, operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("brief_new", args=["sdxl_inpaint_masked"]),
            {
                "prompt": "a blue vase",
                "seed": "7",
                "width": "768",
                "height": "768",
                "steps": "10",
                "image": SimpleUploadedFile("photo.png", (fixtures / "peer_rgba.png").read_bytes()),
                "mask": SimpleUploadedFile("mask.png", (fixtures / "peer_mask.png").read_bytes()),
            },
        )
    assert response.status_code == 302, response.context["form"].errors
    brief = Brief.objects.get()
    assert {u.property_name for u in brief.uploads.all()} == {"image", "mask"}
    with django_capture_on_commit_callbacks(execute=True):
        run_worker(rq_queue)
    generation = brief.generations.get()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    asset = generation.assets.get()
    assert (asset.width, asset.height) == (768, 768)
