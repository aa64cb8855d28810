import copy
import hashlib

import pytest

from comfybridge.catalog import Catalog
from comfybridge.contract import (
    Binding,
    Contract,
    canonical_json,
    checksum,
    stamp_save_prefixes,
)
from comfybridge.errors import ContractError, ParamsInvalid

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "swatch"}},
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "swatch",
    "type": "object",
    "properties": {
        "size": {
            "type": "integer",
            "minimum": 64,
            "maximum": 512,
            "default": 128,
            "x-bind": ["1.inputs.width", "1.inputs.height"],
        },
        "color": {
            "type": "integer",
            "minimum": 0,
            "maximum": 16777215,
            "x-bind": ["1.inputs.color"],
        },
        "sigma": {"type": "number", "minimum": 0.1, "maximum": 10.0, "x-bind": ["2.inputs.sigma"]},
        "label": {"type": "string", "maxLength": 10, "x-bind": ["3.inputs.filename_prefix"]},
    },
    "required": ["color"],
    "additionalProperties": False,
}


@pytest.fixture
def contract():
    return Contract.from_schema(SCHEMA)


def schema_with(**props):
    schema = copy.deepcopy(SCHEMA)
    schema["properties"].update(props)
    return schema


# -- canonical JSON ------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_checksum_is_sha256_of_canonical_json():
    assert checksum({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    assert checksum({"a": 2, "b": 1}) == checksum({"b": 1, "a": 2})


# -- bindings and schema -------------------------------------------------------------------


def test_binding_parses_node_and_input():
    assert Binding.parse("6.inputs.text") == Binding("6", "text")
    assert str(Binding("6", "text")) == "6.inputs.text"


@pytest.mark.parametrize("text", ["6.text", "6.inputs.", "inputs.text", "6.inputs.a.b", 6])
def test_binding_refuses_malformed_targets(text):
    with pytest.raises(ValueError):
        Binding.parse(text)


def test_from_schema_collects_bindings(contract):
    assert contract.bindings["size"] == (Binding("1", "width"), Binding("1", "height"))
    assert contract.property_for("1", "height") == "size"
    assert contract.property_for(1, "color") == "color"
    assert contract.property_for("2", "image") is None


def test_from_schema_refuses_an_invalid_json_schema():
    with pytest.raises(ContractError, match="invalid JSON Schema"):
        Contract.from_schema(schema_with(size={"type": "integr", "x-bind": ["1.inputs.width"]}))


def test_from_schema_refuses_properties_without_binding():
    with pytest.raises(ContractError, match="property 'extra' has no 'x-bind'"):
        Contract.from_schema(schema_with(extra={"type": "string"}))


def test_from_schema_refuses_a_target_bound_twice():
    with pytest.raises(ContractError, match="already bound by 'color'"):
        Contract.from_schema(schema_with(tint={"type": "integer", "x-bind": ["1.inputs.color"]}))


def test_image_properties_are_the_x_image_ones():
    schema = schema_with(
        photo={"type": "string", "format": "x-image", "x-bind": ["9.inputs.image"]}
    )
    assert Contract.from_schema(schema).image_properties() == ["photo"]


def test_ordered_properties_follow_x_order():
    schema = schema_with(
        label={"type": "string", "x-order": 0, "x-bind": ["3.inputs.filename_prefix"]}
    )
    assert Contract.from_schema(schema).ordered_properties()[0] == "label"


# -- check_graph ---------------------------------------------------------------------------


def test_check_graph_accepts_matching_bindings(contract):
    contract.check_graph(GRAPH, Catalog.bundled())


def test_check_graph_refuses_an_input_the_class_does_not_declare():
    contract = Contract.from_schema(
        schema_with(steps={"type": "integer", "x-bind": ["1.inputs.steps"]})
    )
    with pytest.raises(ContractError) as exc:
        contract.check_graph(GRAPH, Catalog.bundled())
    assert exc.value.problems == [
        "property 'steps' binds 1.inputs.steps, but node 1 (EmptyImage) has no input 'steps'"
    ]


def test_check_graph_refuses_a_missing_node():
    contract = Contract.from_schema(
        schema_with(color={"type": "integer", "x-bind": ["9.inputs.color"]})
    )
    with pytest.raises(ContractError, match=r"binds 9\.inputs\.color, but the graph has no node 9"):
        contract.check_graph(GRAPH, Catalog.bundled())


def test_check_graph_refuses_unknown_node_classes(contract):
    graph = copy.deepcopy(GRAPH)
    graph["4"] = {"class_type": "NoSuchNode", "inputs": {}}
    with pytest.raises(ContractError, match="node 4 has unknown class 'NoSuchNode'"):
        contract.check_graph(graph, Catalog.bundled())


def test_check_graph_refuses_binding_a_linked_input():
    contract = Contract.from_schema(
        schema_with(src={"type": "string", "x-bind": ["2.inputs.image"]})
    )
    with pytest.raises(ContractError, match="takes a link of type IMAGE"):
        contract.check_graph(GRAPH, Catalog.bundled())


def test_check_graph_refuses_a_type_the_input_cannot_take():
    contract = Contract.from_schema(
        schema_with(color={"type": "string", "x-bind": ["1.inputs.color"]})
    )
    with pytest.raises(ContractError, match="is INT, which cannot take JSON type string"):
        contract.check_graph(GRAPH, Catalog.bundled())


def test_check_graph_refuses_bounds_looser_than_the_node():
    contract = Contract.from_schema(
        schema_with(
            sigma={"type": "number", "minimum": 0, "maximum": 50, "x-bind": ["2.inputs.sigma"]}
        )
    )
    with pytest.raises(ContractError) as exc:
        contract.check_graph(GRAPH, Catalog.bundled())
    assert any("up to 10.0, and the schema allows 50" in p for p in exc.value.problems)
    assert any("from 0.1, and the schema allows 0" in p for p in exc.value.problems)


# -- validate ------------------------------------------------------------------------------


def test_validate_fills_in_defaults(contract):
    assert contract.validate({"color": 5}) == {"color": 5, "size": 128}


def test_validate_does_not_change_its_argument(contract):
    params = {"color": 5}
    contract.validate(params)
    assert params == {"color": 5}


def test_validate_names_the_maximum():
    schema = schema_with(
        steps={"type": "integer", "minimum": 10, "maximum": 50, "x-bind": ["2.inputs.blur_radius"]}
    )
    with pytest.raises(ParamsInvalid) as exc:
        Contract.from_schema(schema).validate({"color": 1, "steps": 500})
    assert exc.value.errors == {"steps": ["500 is greater than the maximum of 50"]}
    assert "steps: 500 is greater than the maximum of 50" in str(exc.value)


def test_validate_reports_every_property(contract):
    with pytest.raises(ParamsInvalid) as exc:
        contract.validate({"size": 8, "sigma": "soft", "label": "x" * 11})
    assert exc.value.errors == {
        "color": ["This parameter is required."],
        "label": ["is 11 characters long; the maximum is 10"],
        "sigma": ["'soft' is not of type 'number'"],
        "size": ["8 is less than the minimum of 64"],
    }


def test_validate_refuses_unknown_parameters(contract):
    with pytest.raises(ParamsInvalid) as exc:
        contract.validate({"color": 1, "steps": 3})
    assert exc.value.errors == {"": ["unknown parameter 'steps'"]}


def test_validate_refuses_booleans_for_integers(contract):
    with pytest.raises(ParamsInvalid) as exc:
        contract.validate({"color": True})
    assert "color" in exc.value.errors


def test_validate_turns_whole_floats_into_integers(contract):
    params = contract.validate({"color": 5.0})
    assert params["color"] == 5 and isinstance(params["color"], int)


# -- patch ---------------------------------------------------------------------------------


def test_patch_writes_every_bound_input(contract):
    patched = contract.patch(GRAPH, {"size": 256, "color": 7, "label": "run"})
    assert patched["1"]["inputs"] == {"width": 256, "height": 256, "batch_size": 1, "color": 7}
    assert patched["3"]["inputs"]["filename_prefix"] == "run"


def test_patch_never_rewires_or_touches_the_original(contract):
    original = copy.deepcopy(GRAPH)
    patched = contract.patch(GRAPH, contract.validate({"color": 7, "sigma": 2.0}))
    assert original == GRAPH
    assert set(patched) == set(GRAPH)
    for node_id, node in GRAPH.items():
        assert patched[node_id]["class_type"] == node["class_type"]
        assert set(patched[node_id]["inputs"]) == set(node["inputs"])
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                assert patched[node_id]["inputs"][name] == value


def test_patch_refuses_to_overwrite_a_link():
    contract = Contract.from_schema(
        schema_with(src={"type": "string", "x-bind": ["2.inputs.image"]})
    )
    with pytest.raises(ContractError, match="refusing to rewire"):
        contract.patch(GRAPH, {"src": "x.png"})


def test_patch_refuses_unknown_parameters(contract):
    with pytest.raises(ParamsInvalid):
        contract.patch(GRAPH, {"nope": 1})


# -- run nonce -----------------------------------------------------------------------------


def test_stamp_save_prefixes_marks_every_save_image():
    stamped = stamp_save_prefixes(GRAPH, "run-1a2b")
    assert stamped["3"]["inputs"]["filename_prefix"] == "swatch_run-1a2b"
    assert GRAPH["3"]["inputs"]["filename_prefix"] == "swatch"
    assert stamped["1"] == GRAPH["1"]


@pytest.mark.parametrize("nonce", ["", "a/b", "../x", "x" * 65])
def test_stamp_save_prefixes_refuses_unsafe_nonces(nonce):
    with pytest.raises(ValueError):
        stamp_save_prefixes(GRAPH, nonce)
