import pytest

from comfybridge.catalog import Catalog

TINY = {
    "Thing": {
        "input": {
            "required": {
                "size": ["INT", {"default": 8, "min": 1, "max": 64}],
                "mode": [["fast", "slow"], {}],
                "image": ["IMAGE"],
            },
            "optional": {"mask": ["MASK"], "blend": ["COMBO", {"options": ["add", "mul"]}]},
            "hidden": {"prompt": "PROMPT"},
        },
        "output": ["IMAGE", "MASK"],
        "output_node": False,
    }
}


def test_it_lists_required_optional_and_hidden_inputs():
    assert Catalog(TINY).input_names("Thing") == [
        "size",
        "mode",
        "image",
        "mask",
        "blend",
        "prompt",
    ]


def test_it_knows_which_classes_exist():
    catalog = Catalog(TINY)
    assert catalog.has_class("Thing")
    assert not catalog.has_class("NoSuchNode")


def test_it_raises_key_error_for_an_unknown_class():
    with pytest.raises(KeyError, match="NoSuchNode"):
        Catalog(TINY).input_names("NoSuchNode")


def test_input_spec_parses_every_shape():
    catalog = Catalog(TINY)
    size = catalog.input_spec("Thing", "size")
    assert (size.type, size.section, size.minimum, size.maximum) == ("INT", "required", 1, 64)
    assert catalog.input_spec("Thing", "mode").options == ("fast", "slow")
    assert catalog.input_spec("Thing", "blend").options == ("add", "mul")
    assert catalog.input_spec("Thing", "image").is_link
    assert catalog.input_spec("Thing", "prompt").section == "hidden"
    assert catalog.input_spec("Thing", "nope") is None


def test_check_value_reports_what_comfyui_would():
    catalog = Catalog(TINY)
    assert catalog.check_value("Thing", "size", 8) == []
    assert "greater than the maximum of 64" in catalog.check_value("Thing", "size", 65)[0]
    assert "must be an integer" in catalog.check_value("Thing", "size", True)[0]
    assert "not one of" in catalog.check_value("Thing", "mode", "medium")[0]
    assert catalog.check_value("Thing", "mode", "medium", check_options=False) == []


def test_the_bundled_catalogue_is_comfyui_0_3_64():
    catalog = Catalog.bundled()
    assert catalog is Catalog.bundled()
    assert catalog.input_names("KSampler")[:3] == ["model", "seed", "steps"]
    assert catalog.output_types("CheckpointLoaderSimple") == ["MODEL", "CLIP", "VAE"]
    assert catalog.is_output_node("SaveImage")
    assert "steps" not in catalog.input_names("EmptyLatentImage")
