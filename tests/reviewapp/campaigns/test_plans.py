"""Reading a plan: every problem names its place (axis, row, cell) and the field."""

from __future__ import annotations

import random

import pytest

from reviewapp.campaigns import plans
from reviewapp.catalog.models import WorkflowVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdxl(workflows):
    return WorkflowVersion.objects.get(workflow__slug="sdxl_base_refiner").contract()


@pytest.fixture
def swatch(workflows):
    return WorkflowVersion.objects.get(workflow__slug="color_swatch").contract()


def cells(plan, contract):
    return plans.checked(plans.expand(plan), contract)


def test_a_template_fills_the_prompt_from_axis_labels(sdxl):
    spec = {
        "axes": [
            {"name": "product", "property": "seed", "values": {"mug": 1, "tote": 2}},
            {"name": "scene", "values": {
                "beach": {"width": 1024, "height": 768},
                "forest": {"width": 768, "height": 1024},
            }},
        ],
        "fixed": {"steps": "20"},
        "template": {"prompt": "a {product} on a {scene}, studio light"},
    }  # fmt: skip
    out = cells(plans.matrix_plan(spec, sdxl), sdxl)
    assert [c.params["prompt"] for c in out[:2]] == [
        "a mug on a beach, studio light",
        "a mug on a forest, studio light",
    ]
    assert (out[1].params["width"], out[1].params["height"]) == (768, 1024)
    assert out[3].params["seed"] == 2 and out[3].params["steps"] == 20


def test_a_template_naming_no_axis_is_refused(sdxl):
    spec = {
        "axes": [{"name": "product", "property": "seed", "values": [1, 2]}],
        "fixed": {"width": 1024, "height": 1024},
        "template": {"prompt": "a {prodcut}"},
    }
    with pytest.raises(plans.PlanInvalid) as exc:
        plans.matrix_plan(spec, sdxl)
    assert exc.value.problems == ["template: prompt: {prodcut} is not an axis (axes: product)"]


@pytest.mark.parametrize("text", ["a {product:d}", "a {product!r}", "a {product:>999999999}"])
def test_a_template_with_a_format_is_refused(sdxl, text):
    spec = {
        "axes": [{"name": "product", "property": "seed", "values": [1, 2]}],
        "fixed": {"width": 1024, "height": 1024},
        "template": {"prompt": text},
    }
    with pytest.raises(plans.PlanInvalid) as exc:
        plans.matrix_plan(spec, sdxl)
    assert exc.value.problems == [
        "template: prompt: write an axis as {name}, without a format or conversion"
    ]


def test_random_seeds_are_distinct_drawn_once_and_kept(sdxl):
    spec = {
        "axes": [{"name": "seed", "property": "seed", "random": 5}],
        "fixed": {"prompt": "x", "width": 1024, "height": 1024},
    }
    plan = plans.matrix_plan(spec, sdxl, rng=random.Random(1))
    seeds = [v["params"]["seed"] for v in plan["axes"][0]["values"]]
    assert len(set(seeds)) == 5 and all(0 <= s <= 2147483647 for s in seeds)
    # The stored plan expands to the same seeds every time.
    assert [c.params["seed"] for c in plans.expand(plan)] == seeds


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({}, "'axes' must be a non-empty list"),
        ({"axes": [{"name": "a", "property": "nope", "values": [1]}]},
         "axis 'a': 'nope' is not a parameter (color, width, height, blur_radius)"),
        ({"axes": [{"name": "a", "property": "width", "values": [64, 64]}]},
         "axis 'a': two values have the same label"),
        ({"axes": [{"name": "a", "property": "width", "values": [64], "random": 2}]},
         "axis 'a': give exactly one of 'values', 'files' or 'random'"),
        ({"axes": [{"name": "a", "property": "color", "values": ["teal"]}]},
         "axis 'a': color: Enter a colour as #rrggbb."),
        ({"axes": [{"name": "a", "property": "width", "values": [64]}], "fixed": {"hue": 1}},
         "fixed: 'hue' is not a parameter (color, width, height, blur_radius)"),
        ({"axes": [{"name": f"a{i}", "property": "width", "values": [64]} for i in range(9)]},
         "9 axes; a matrix has at most 8"),
        ({"axes": [{"name": "a", "property": ["width"], "values": [64]}]},
         "axis 'a': 'property' must name one parameter"),
    ],
)  # fmt: skip
def test_a_malformed_matrix_names_the_problem(swatch, spec, problem):
    with pytest.raises(plans.PlanInvalid) as exc:
        plans.matrix_plan(spec, swatch)
    assert exc.value.problems == [problem]


def test_rows_from_jsonl_keep_their_types_and_metadata(swatch):
    data = b'{"sku": "A1", "color": 255, "width": 128}\n\n{"sku": "A2", "color": "#00ff00"}\n'
    plan = plans.rows_plan(data, "rows.jsonl", swatch)
    out = cells(plan, swatch)
    assert [c.metadata for c in out] == [{"sku": "A1"}, {"sku": "A2"}]
    assert out[1].params == {"color": 0x00FF00, "width": 256, "height": 256, "blur_radius": 1}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "rows.csv: no rows"),
        (b"sku,sku\n1,2\n", "rows.csv: the first line must name every column, once each"),
        (b"sku,color\nA,#ff0000,extra\n", "row 1 has 3 fields; the header has 2"),
        (b"sku,locale\nA,en\n", "rows.csv: no column is a parameter of this workflow "
                                "(color, width, height, blur_radius)"),
        (b"color\n\xff\xfe\n", "rows.csv: not UTF-8 text"),
        (b"color,width\n#ff0000,wide\n", "row 1, column width: Enter a whole number."),
    ],
)  # fmt: skip
def test_a_malformed_row_file_names_the_problem(swatch, data, problem):
    with pytest.raises(plans.PlanInvalid) as exc:
        plans.rows_plan(data, "rows.csv", swatch)
    assert exc.value.problems == [problem]


def test_every_failing_cell_is_counted_and_the_first_are_shown(swatch):
    data = b"color,width\n" + b"".join(b"#ff0000,%d\n" % (2000 + i) for i in range(30))
    plan = plans.rows_plan(data, "rows.csv", swatch)
    with pytest.raises(plans.PlanInvalid) as exc:
        cells(plan, swatch)
    assert exc.value.total == 30 and len(exc.value.problems) == plans.SHOWN_PROBLEMS
    assert str(exc.value).endswith("; and 10 more")
    assert exc.value.problems[0] == "row 1: width: 2000 is greater than the maximum of 1024"
