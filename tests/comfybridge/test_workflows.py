"""Every shipped workflow is a graph ComfyUI 0.3.64 accepts, and its schema fits it."""

import copy
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from comfybridge.catalog import Catalog
from comfybridge.contract import Contract, is_link
from comfybridge.errors import ContractError

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(p.name.removesuffix(".api.json") for p in (ROOT / "workflows").glob("*.api.json"))
# The only classes the simulator implements; a shipped workflow must run on both.
ALLOWED = {
    "CheckpointLoaderSimple",
    "CLIPTextEncode",
    "CLIPTextEncodeSDXL",
    "CLIPTextEncodeSDXLRefiner",
    "KSampler",
    "KSamplerAdvanced",
    "EmptyLatentImage",
    "VAEDecode",
    "VAEEncode",
    "VAEEncodeForInpaint",
    "SetLatentNoiseMask",
    "InpaintModelConditioning",
    "LoadImage",
    "LoadImageMask",
    "SaveImage",
    "PreviewImage",
    "EmptyImage",
    "ImageBlur",
    "ImageAddNoise",
    "InvertMask",
    "ImageScale",
    "ImageInvert",
    "ImageCompositeMasked",
    "SolidMask",
    "ImageToMask",
    "MaskToImage",
}
CHECKPOINTS = {
    "sd_xl_base_1.0.safetensors",
    "sd_xl_refiner_1.0.safetensors",
    "sd_xl_inpaint_0.1.safetensors",
}
CATALOG = Catalog.bundled()


def load(name):
    graph = json.loads((ROOT / "workflows" / f"{name}.api.json").read_text("utf-8"))
    schema = json.loads((ROOT / "params" / f"{name}.schema.json").read_text("utf-8"))
    return graph, schema


def test_the_shipped_workflows_are_there():
    assert {"sdxl_base_refiner", "sdxl_inpaint_masked", "color_swatch", "product_mockup"} <= set(
        NAMES
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_has_a_schema(name):
    assert (ROOT / "params" / f"{name}.schema.json").exists()


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_complete_and_binds_existing_inputs(name):
    graph, schema = load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    for prop in schema["properties"].values():
        assert prop["title"] and prop["description"]
    Contract.from_schema(schema).check_graph(graph, CATALOG)


@pytest.mark.parametrize("name", NAMES)
def test_every_node_is_a_known_class_with_its_required_inputs(name):
    graph, _ = load(name)
    for node_id, node in graph.items():
        assert node_id.isdigit(), node_id
        assert node["class_type"] in ALLOWED, node["class_type"]
        missing = set(CATALOG.required_inputs(node["class_type"])) - set(node["inputs"])
        assert not missing, f"node {node_id} lacks {missing}"
        unknown = set(node["inputs"]) - set(CATALOG.input_names(node["class_type"]))
        assert not unknown, f"node {node_id} has undeclared inputs {unknown}"


@pytest.mark.parametrize("name", NAMES)
def test_every_literal_fits_the_catalogue(name):
    graph, _ = load(name)
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if is_link(value):
                continue
            if input_name == "ckpt_name":
                assert value in CHECKPOINTS, f"node {node_id}: unexpected checkpoint {value}"
                continue
            problems = CATALOG.check_value(node["class_type"], input_name, value)
            assert not problems, f"node {node_id}: {problems}"


@pytest.mark.parametrize("name", NAMES)
def test_every_link_carries_the_type_its_input_takes(name):
    graph, _ = load(name)
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if not is_link(value):
                continue
            source_id, index = value
            assert source_id in graph, f"node {node_id}.{input_name} links to missing {source_id}"
            outputs = CATALOG.output_types(graph[source_id]["class_type"])
            assert index < len(outputs), f"node {node_id}.{input_name}: no output {index}"
            spec = CATALOG.input_spec(node["class_type"], input_name)
            assert spec.type == outputs[index], (
                f"node {node_id}.{input_name} takes {spec.type}, gets {outputs[index]}"
            )


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_saves_an_image(name):
    graph, _ = load(name)
    assert any(node["class_type"] == "SaveImage" for node in graph.values())


@pytest.mark.parametrize("name", NAMES)
def test_patched_extremes_still_fit_the_catalogue(name):
    graph, schema = load(name)
    contract = Contract.from_schema(schema)
    for pick in (min, max):
        params = {}
        for prop_name, prop in schema["properties"].items():
            if "enum" in prop:
                params[prop_name] = pick(prop["enum"])
            elif prop["type"] in ("integer", "number"):
                params[prop_name] = prop["minimum"] if pick is min else prop["maximum"]
            elif prop.get("format") == "x-image":
                params[prop_name] = "uploads/abc.png"
            else:
                params[prop_name] = "x" * (prop.get("maxLength", 10) if pick is max else 1)
        patched = contract.patch(graph, contract.validate(params))
        for bindings in contract.bindings.values():
            for b in bindings:
                node = patched[b.node_id]
                problems = CATALOG.check_value(
                    node["class_type"],
                    b.input_name,
                    node["inputs"][b.input_name],
                    check_options=False,
                )
                assert not problems


def test_the_playbook_client_fits_the_base_refiner_graph():
    # The playbook's minimal client writes these inputs directly.
    graph, _ = load("sdxl_base_refiner")
    assert CATALOG.input_spec(graph["3"]["class_type"], "seed") is not None
    assert graph["4"]["class_type"] == "CheckpointLoaderSimple"
    assert graph["5"]["class_type"] == "EmptyLatentImage"
    assert graph["6"]["class_type"] == graph["7"]["class_type"] == "CLIPTextEncode"
    assert graph["3"]["inputs"]["positive"] == ["6", 0]
    assert graph["3"]["inputs"]["negative"] == ["7", 0]


def test_the_playbook_bindings_are_refused():
    graph, schema = load("sdxl_base_refiner")
    schema = copy.deepcopy(schema)
    schema["properties"]["steps"]["x-bind"] = ["5.inputs.steps"]
    schema["properties"]["cfg"]["x-bind"] = ["4.inputs.cfg"]
    with pytest.raises(ContractError) as exc:
        Contract.from_schema(schema).check_graph(graph, CATALOG)
    assert exc.value.problems == [
        "property 'steps' binds 5.inputs.steps, but node 5 (EmptyLatentImage) has no input 'steps'",
        "property 'cfg' binds 4.inputs.cfg, but node 4 (CheckpointLoaderSimple) has no input 'cfg'",
    ]


def test_the_playbook_schema_bounds_hold():
    _, schema = load("sdxl_base_refiner")
    props = schema["properties"]
    assert props["prompt"]["maxLength"] == 800
    assert props["negative"]["default"] == ""
    assert (props["seed"]["minimum"], props["seed"]["maximum"]) == (0, 2147483647)
    assert props["width"]["enum"] == props["height"]["enum"] == [768, 896, 1024, 1152]
    assert (props["steps"]["minimum"], props["steps"]["maximum"]) == (10, 50)
    assert (props["cfg"]["minimum"], props["cfg"]["maximum"]) == (1.0, 12.0)
    assert set(schema["required"]) == {"prompt", "seed", "width", "height"}


def _sim_class():
    try:
        from comfybridge.sim.process import SimProcess
    except ImportError:
        pytest.skip("comfybridge.sim is not available")
    return SimProcess


def test_sim_every_shipped_workflow_runs_end_to_end():
    from comfybridge.client import ComfyClient
    from comfybridge.contract import stamp_save_prefixes

    fixtures = ROOT / "tests" / "fixtures"
    with _sim_class()(step_ms=1) as proc, ComfyClient(proc.url) as client:
        catalog = Catalog(client.object_info())
        for name in NAMES:
            graph, schema = load(name)
            contract = Contract.from_schema(schema)
            contract.check_graph(graph, catalog)
            params = {"prompt": "a red kite over dunes", "seed": 7, "width": 768, "height": 896}
            params = {k: v for k, v in params.items() if k in contract.properties}
            if "color" in contract.properties:
                params["color"] = 0x3366CC
            uploads = {
                "image": "peer_rgba.png",
                "mask": "peer_mask.png",
                "product": "peer_rgba.png",
            }
            for prop in contract.image_properties():
                data = (fixtures / uploads[prop]).read_bytes()
                params[prop] = client.upload_image(data, uploads[prop]).load_name
            patched = stamp_save_prefixes(contract.prepare(graph, params), "wf1")
            seen = []
            result = client.run(patched, timeout=60, contract=contract, on_progress=seen.append)
            assert result.saved, name
            assert seen[-1].fraction == 1.0
            size = Image.open(io.BytesIO(client.download(result.saved[0]))).size
            assert size == (768, 896), name
