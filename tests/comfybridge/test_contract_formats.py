"""x-formats: which image formats an image property accepts."""

import pytest

from comfybridge.contract import IMAGE_FORMATS, Contract
from comfybridge.errors import ContractError
from tests.comfybridge.test_contract import schema_with


def photo(**extra):
    return {"type": "string", "format": "x-image", "x-bind": ["9.inputs.image"], **extra}


def test_an_image_property_accepts_png_jpeg_and_webp_by_default():
    contract = Contract.from_schema(schema_with(photo=photo()))
    assert contract.image_formats("photo") == IMAGE_FORMATS == ("png", "jpeg", "webp")


def test_x_formats_narrows_the_accepted_formats():
    contract = Contract.from_schema(schema_with(photo=photo(**{"x-formats": ["png"]})))
    assert contract.image_formats("photo") == ("png",)


@pytest.mark.parametrize("formats", [[], ["tiff"], ["png", "png"], "png", [["png"]]])
def test_x_formats_must_list_distinct_known_formats(formats):
    with pytest.raises(ContractError) as caught:
        Contract.from_schema(schema_with(photo=photo(**{"x-formats": formats})))
    assert caught.value.problems == [
        "property 'photo': 'x-formats' must be a list of distinct formats among png, jpeg, webp"
    ]


def test_x_formats_is_only_for_image_properties():
    text = {"type": "string", "x-bind": ["9.inputs.image"], "x-formats": ["png"]}
    with pytest.raises(ContractError, match="'x-formats' is only for image properties"):
        Contract.from_schema(schema_with(photo=text))
