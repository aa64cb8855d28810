import io

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from reviewapp.briefs.forms import brief_form_class
from reviewapp.catalog.services import read_pair


def schema_of(slug):
    _, _, schema = read_pair(settings.WORKFLOWS_DIR / f"{slug}.api.json", settings.PARAMS_DIR)
    return schema


def sdxl_data(**overrides):
    data = {
        "prompt": "a red bicycle",
        "negative": "",
        "seed": "42",
        "width": "1024",
        "height": "1024",
        "steps": "30",
        "cfg": "6.5",
    }
    data.update(overrides)
    return data


def png_bytes(size=(8, 8), mode="RGB"):
    buf = io.BytesIO()
    Image.new(mode, size, "white").save(buf, format="PNG")
    return buf.getvalue()


def test_enum_becomes_a_select_with_the_schema_choices():
    form = brief_form_class(schema_of("sdxl_base_refiner"))()
    html = str(form["width"])
    assert html.startswith("<select")
    for value in (768, 896, 1024, 1152):
        assert f'value="{value}"' in html


def test_bounded_numbers_become_number_inputs_with_min_and_max():
    form = brief_form_class(schema_of("sdxl_base_refiner"))()
    steps = str(form["steps"])
    assert 'type="number"' in steps and 'min="10"' in steps and 'max="50"' in steps
    cfg = str(form["cfg"])
    assert 'min="1.0"' in cfg and 'max="12.0"' in cfg and 'step="any"' in cfg


def test_long_text_is_a_textarea_and_defaults_are_filled_in():
    form = brief_form_class(schema_of("sdxl_base_refiner"))()
    assert str(form["prompt"]).startswith("<textarea")
    assert 'maxlength="800"' in str(form["prompt"])
    assert 'value="30"' in str(form["steps"])
    assert 'value="6.5"' in str(form["cfg"])


def test_fields_follow_the_schema_order_and_required_list():
    form = brief_form_class(schema_of("sdxl_base_refiner"))()
    assert list(form.fields) == ["prompt", "negative", "seed", "width", "height", "steps", "cfg"]
    assert form.fields["prompt"].required and form.fields["seed"].required
    assert not form.fields["steps"].required and not form.fields["negative"].required


def test_steps_500_is_refused_at_the_field_naming_the_bound():
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(steps="500"))
    assert not form.is_valid()
    assert list(form.errors) == ["steps"]
    assert "50" in form.errors["steps"][0]


def test_a_width_outside_the_enum_is_refused_at_the_field():
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(width="1000"))
    assert not form.is_valid()
    assert "width" in form.errors


def test_a_prompt_over_800_characters_is_refused():
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(prompt="x" * 801))
    assert not form.is_valid()
    assert "800" in form.errors["prompt"][0]


def test_valid_input_gives_typed_params_with_defaults():
    form = brief_form_class(schema_of("sdxl_base_refiner"))(sdxl_data(steps="", cfg=""))
    assert form.is_valid(), form.errors
    params = form.params()
    assert params["seed"] == 42 and params["width"] == 1024
    assert "steps" not in params  # the schema's default applies when the service validates


def test_color_is_a_colour_picker_that_gives_an_integer():
    form_class = brief_form_class(schema_of("color_swatch"))
    assert 'type="color"' in str(form_class()["color"])
    form = form_class({"color": "#ff8000", "width": "256", "height": "128", "blur_radius": "1"})
    assert form.is_valid(), form.errors
    assert form.params()["color"] == 0xFF8000
    bad = form_class({"color": "orange", "width": "256", "height": "128"})
    assert not bad.is_valid() and "color" in bad.errors


def test_image_properties_are_file_inputs_that_refuse_non_images():
    form_class = brief_form_class(schema_of("sdxl_inpaint_masked"))
    assert 'type="file"' in str(form_class()["image"])
    files = {
        "image": SimpleUploadedFile("photo.png", png_bytes(), "image/png"),
        "mask": SimpleUploadedFile("mask.png", b"not an image", "image/png"),
    }
    form = form_class(sdxl_data(), files)
    assert not form.is_valid()
    assert list(form.errors) == ["mask"]
