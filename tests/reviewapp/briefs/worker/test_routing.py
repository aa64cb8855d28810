"""A pool whose backends cannot run a workflow keeps its generations queued, says why, and
runs them once a backend that can appears."""

import pytest
from django.urls import reverse

from comfybridge.sim.process import SimProcess
from reviewapp.briefs import services
from reviewapp.briefs.models import Generation
from reviewapp.briefs.worker.reconcile import reconcile
from reviewapp.catalog.models import WorkflowVersion
from tests.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)

REFINER = "sd_xl_refiner_1.0.safetensors"


def submit_sdxl(operator):
    version = WorkflowVersion.objects.get(workflow__slug="sdxl_base_refiner", status="published")
    params = {"prompt": "a lighthouse at dusk", "seed": 7, "width": 768, "height": 768, "steps": 10}
    return services.submit_brief(version, params, actor=operator)


def test_no_capable_backend_waits_with_the_reason_then_runs_when_one_appears(
    client, operator, workflows, settings, rq_queue
):
    with SimProcess(args=("--checkpoints", "sd_xl_base_1.0.safetensors")) as lacking:
        settings.COMFYUI_POOLS = {"default": (lacking.url,)}
        brief = submit_sdxl(operator)
        generation = brief.generations.get()
        run_worker(rq_queue)

        generation.refresh_from_db()
        assert generation.status == Generation.Status.QUEUED
        assert generation.attempt == 0 and generation.prompt_id is None
        assert REFINER in generation.waiting_reason
        assert "pool default" in generation.waiting_reason
        client.force_login(operator)
        page = client.get(reverse("brief_detail", args=[brief.pk])).content.decode()
        assert "Waiting: " in page and REFINER in page

        # Nothing changes while no backend can: the reconciler tries again, it waits again.
        assert generation.pk in reconcile().enqueued
        run_worker(rq_queue)
        generation.refresh_from_db()
        assert (
            generation.status == Generation.Status.QUEUED and REFINER in generation.waiting_reason
        )

        with SimProcess() as capable:  # offers every SDXL checkpoint
            settings.COMFYUI_POOLS = {"default": (lacking.url, capable.url)}
            assert generation.pk in reconcile().enqueued
            run_worker(rq_queue)
            generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    assert generation.backend == capable.url
    assert generation.waiting_reason == ""
    assert generation.attempt == 1


def test_a_row_of_a_pool_no_longer_configured_waits_and_says_so(
    operator, workflows, comfy, rq_queue
):
    brief = submit_sdxl(operator)
    Generation.objects.filter(brief=brief).update(pool="gone")
    report = reconcile()
    generation = brief.generations.get()
    assert generation.pk not in report.enqueued
    assert generation.status == Generation.Status.QUEUED
    assert generation.waiting_reason.startswith("pool 'gone' is not configured")


def test_a_checkpoint_copied_onto_a_live_backend_is_noticed(
    operator, workflows, settings, rq_queue, monkeypatch
):
    import comfybridge.pool

    # Read the models of a backend that lacked one again at once, not after 15 s.
    monkeypatch.setattr(comfybridge.pool, "INCAPABLE_RECHECK", 0.0)
    with SimProcess(args=("--checkpoints", "sd_xl_base_1.0.safetensors")) as backend:
        settings.COMFYUI_POOLS = {"default": (backend.url,)}
        generation = submit_sdxl(operator).generations.get()
        run_worker(rq_queue)
        generation.refresh_from_db()
        assert REFINER in generation.waiting_reason

        folder = backend.data_dir / "models" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / REFINER).write_bytes(b"weights")
        assert generation.pk in reconcile().enqueued
        run_worker(rq_queue)
        generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
