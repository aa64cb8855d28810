"""Backend outputs: refused when they announce too many pixels; stored as returned, and
served without the prompt and workflow ComfyUI writes into them."""

import hashlib
import io
import json
import uuid
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

from comfybridge.client import ComfyClient
from comfybridge.contract import stamp_save_prefixes
from comfybridge.sim.process import SimProcess
from reviewapp.briefs.models import Asset, Generation
from reviewapp.briefs.worker import execution
from reviewapp.lib import imagemeta
from tests.conftest import PASSWORD
from tests.reviewapp import imagefiles
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db

UI_WORKFLOW = {"nodes": [{"id": 3, "type": "SaveImage"}], "links": [], "version": 0.4}


@pytest.fixture
def sim(settings, tmp_path):
    with SimProcess(step_ms=0, data_dir=tmp_path / "sim") as server:
        settings.COMFYUI_POOLS = {"default": (server.url,)}
        yield server


def ran_on_backend(operator, sim, extra_data=None) -> Generation:
    """A swatch generation whose prompt ran on the backend; the worker has not yet
    fetched its outputs (as after a worker died)."""
    generation = submit_swatch(operator).generations.get()
    generation.mark_submitting(prompt_id=uuid.uuid4(), backend=sim.url, run_timeout_s=60)
    generation.save()
    version = generation.brief.workflow_version
    graph = stamp_save_prefixes(
        version.contract().patch(version.graph, generation.params), generation.prompt_id.hex[:12]
    )
    with ComfyClient(sim.url) as client:
        client.submit(graph, prompt_id=str(generation.prompt_id), extra_data=extra_data)
        client.wait(str(generation.prompt_id), timeout=10)
    return generation


def output_files(sim):
    return sorted((sim.data_dir / "output").rglob("*.png"))


def stored_files(settings) -> list[str]:
    media = Path(settings.MEDIA_ROOT)
    return [str(p) for folder in ("assets", "thumbs") for p in (media / folder).rglob("*")]


def test_an_output_announcing_too_many_pixels_fails_the_generation_for_good(
    operator, workflows, sim, settings
):
    generation = ran_on_backend(operator, sim)
    [output] = output_files(sim)
    output.write_bytes(imagefiles.bomb_png())  # what the backend now serves from /view
    execution.run_generation(generation.pk)  # no RetryLater: not worth another attempt
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert generation.attempt == 1
    assert generation.error == (
        f"the backend returned an image we refuse: {output.name} (node 3): 30000x30000 is "
        "900,000,000 pixels, over the limit of 67,108,864 pixels (IMAGE_MAX_PIXELS)"
    )
    assert not Asset.objects.exists()
    assert stored_files(settings) == []


def test_served_outputs_have_no_prompt_or_workflow_and_the_same_pixels(
    client, operator, workflows, sim
):
    generation = ran_on_backend(operator, sim, {"extra_pnginfo": {"workflow": UI_WORKFLOW}})
    execution.run_generation(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.AWAITING_REVIEW, generation.error
    asset = generation.assets.get()

    with asset.file.open("rb") as fh:
        original = fh.read()
    assert imagemeta.png_text_keys(original) == ["prompt", "workflow"]
    assert hashlib.sha256(original).hexdigest() == asset.sha256

    assert client.login(username=operator.username, password=PASSWORD)
    response = client.get(reverse("asset_file", args=[asset.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    served = b"".join(response.streaming_content)
    assert imagemeta.png_text_keys(served) == []
    assert b"KSampler" not in served and b"EmptyImage" not in served
    assert Image.open(io.BytesIO(served)).tobytes() == Image.open(io.BytesIO(original)).tobytes()
    assert hashlib.sha256(served).hexdigest() == asset.delivery_sha256 != asset.sha256


def test_a_workflow_that_opts_in_serves_the_original(client, operator, workflows, sim):
    workflow = workflows["color_swatch"]
    workflow.embed_generation_metadata = True
    workflow.save()
    generation = ran_on_backend(operator, sim)
    execution.run_generation(generation.pk)
    asset = Generation.objects.get(pk=generation.pk).assets.get()
    assert client.login(username=operator.username, password=PASSWORD)
    served = b"".join(client.get(reverse("asset_file", args=[asset.pk])).streaming_content)
    assert hashlib.sha256(served).hexdigest() == asset.sha256
    assert json.loads(Image.open(io.BytesIO(served)).text["prompt"])["3"]["class_type"] == (
        "SaveImage"
    )


def test_an_asset_stored_before_delivery_copies_is_stripped_on_the_way_out(
    client, operator, workflows, sim
):
    generation = ran_on_backend(operator, sim)
    execution.run_generation(generation.pk)
    asset = Generation.objects.get(pk=generation.pk).assets.get()
    Asset.objects.filter(pk=asset.pk).update(delivery_file="", delivery_sha256="")
    assert client.login(username=operator.username, password=PASSWORD)
    served = b"".join(client.get(reverse("asset_file", args=[asset.pk])).streaming_content)
    assert imagemeta.png_text_keys(served) == []


def test_the_generation_page_shows_both_hashes(client, reviewer, operator, workflows, sim):
    generation = ran_on_backend(operator, sim)
    execution.run_generation(generation.pk)
    asset = Generation.objects.get(pk=generation.pk).assets.get()
    assert client.login(username=reviewer.username, password=PASSWORD)
    page = client.get(reverse("generation_detail", args=[generation.pk])).content.decode()
    assert f'title="{asset.sha256}"' in page and f'title="{asset.delivery_sha256}"' in page
