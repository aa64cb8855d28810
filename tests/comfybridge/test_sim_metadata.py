"""The simulator's SaveImage writes the prompt and the caller's extra_pnginfo (the UI
workflow) into PNG text chunks, as ComfyUI does."""

import io
import json

import pytest
from PIL import Image

from comfybridge.client import ComfyClient
from comfybridge.sim.process import SimProcess

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 255},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "meta"}},
}


@pytest.fixture(scope="module")
def client():
    with SimProcess(step_ms=0) as sim, ComfyClient(sim.url) as client:
        yield client


def test_save_image_embeds_the_prompt_and_the_workflow(client):
    workflow = {"nodes": [{"id": 2, "type": "SaveImage"}], "links": []}
    reply = client.submit(GRAPH, extra_data={"extra_pnginfo": {"workflow": workflow}})
    result = client.wait(reply["prompt_id"], timeout=10)
    [output] = result.saved
    text = Image.open(io.BytesIO(client.download(output))).text
    assert json.loads(text["prompt"]) == GRAPH
    assert json.loads(text["workflow"]) == workflow
