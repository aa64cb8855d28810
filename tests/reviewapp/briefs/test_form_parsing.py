"""The brief form reads numbers and colours one plain way, and reports every bad field at once."""

import copy

import pytest

from reviewapp.briefs.forms import brief_form_class
from tests.reviewapp.test_forms import schema_of, sdxl_data


def swatch_form(**data):
    values = {"color": "#ff8000", "width": "256", "height": "128", "blur_radius": "1", **data}
    return brief_form_class(schema_of("color_swatch"))(values)


@pytest.mark.parametrize(
    # Arabic-Indic 256 and a superscript 2 are digits to str.isdigit(), not to a brief.
    "text",
    ["0x100", "+256", "2_56", "\u0662\u0665\u0666", "\u00b2", "256.0", "2 56", "1e3", "--256"],
)
def test_it_refuses_an_integer_not_written_in_plain_digits(text):
    form = swatch_form(width=text)
    assert not form.is_valid()
    assert list(form.errors) == ["width"]


@pytest.mark.parametrize("text, value", [("256", 256), (" 512 ", 512), ("0064", 64)])
def test_it_reads_plain_integers(text, value):
    form = swatch_form(width=text)
    assert form.is_valid(), form.errors
    assert form.params()["width"] == value


def test_a_negative_integer_is_read_and_then_bounded():
    form = swatch_form(width="-5")
    assert not form.is_valid()
    assert "greater than or equal to 64" in form.errors["width"][0]


@pytest.mark.parametrize("text", ["+6.5", "1_0", "\u0666", "inf", "nan", "1e999", "0x1p3", "6.5.1"])
def test_it_refuses_a_number_not_written_in_plain_digits(text):
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(cfg=text))
    assert not form.is_valid()
    assert list(form.errors) == ["cfg"]


@pytest.mark.parametrize("text, value", [("6.5", 6.5), ("7", 7.0), (".5e1", 5.0), ("-1e0", None)])
def test_it_reads_plain_numbers(text, value):
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(cfg=text))
    if value is None:  # read, then refused by the bound
        assert "greater than or equal to 1" in form.errors["cfg"][0]
    else:
        assert form.is_valid(), form.errors
        assert form.params()["cfg"] == value


@pytest.mark.parametrize(
    "text",
    [
        *("ff8000", "##ff8000", "#ff800", "#ff80000", "#+ff800", "#ff_800", "#ggg000"),
        *("#" + "\u0661" * 6, "rgb(255,128,0)", "16744448"),  # Arabic-Indic digits
    ],
)
def test_it_refuses_a_colour_that_is_not_hash_rrggbb(text):
    form = swatch_form(color=text)
    assert not form.is_valid()
    assert form.errors["color"] == ["Enter a colour as #rrggbb."]


@pytest.mark.parametrize("text", ["#ff8000", "#FF8000", " #ff8000 "])
def test_it_reads_a_hash_rrggbb_colour(text):
    form = swatch_form(color=text)
    assert form.is_valid(), form.errors
    assert form.params()["color"] == 0xFF8000


def test_every_bad_field_is_reported_in_one_submission():
    # width's upper bound lives only in the schema (exclusiveMaximum): the form field has no
    # max, so only the contract can refuse it; it must still be reported next to the others.
    schema = copy.deepcopy(schema_of("color_swatch"))
    schema["properties"]["width"].pop("maximum")
    schema["properties"]["width"]["exclusiveMaximum"] = 1000
    form = brief_form_class(schema)(
        {"color": "orange", "width": "1000", "height": "0x40", "blur_radius": "99"}
    )
    assert not form.is_valid()
    assert set(form.errors) == {"color", "width", "height", "blur_radius"}
    assert form.errors["color"] == ["Enter a colour as #rrggbb."]  # not "required" as well
    assert "1000" in form.errors["width"][0]


def test_a_seed_with_only_a_negative_maximum_gets_a_random_value_in_range():
    schema = copy.deepcopy(schema_of("color_swatch"))
    schema["properties"]["seed"] = {"type": "integer", "maximum": -5, "x-bind": ["1.inputs.x"]}
    form = brief_form_class(schema)()
    assert int(form["seed"].value()) <= -5
