"""Every import the admin page accepts renders its brief form, takes briefs and diffs; every
one it refuses answers 200 with a message naming the file, property, keyword or node."""

import copy
import html
import json
import shutil

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from reviewapp.catalog.models import Workflow, WorkflowVersion
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

DEEP = b"[" * 10_000 + b"]" * 10_000


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def upload(client, slug, graph, schema, publish=True):
    def as_bytes(document):
        return document if isinstance(document, bytes) else json.dumps(document).encode()

    return client.post(
        reverse("manage_import"),
        {
            "slug": slug,
            "graph": SimpleUploadedFile("g.api.json", as_bytes(graph)),
            "schema": SimpleUploadedFile("s.schema.json", as_bytes(schema)),
            "publish": "on" if publish else "",
        },
    )


@pytest.fixture
def swatch(workflows):
    version = workflows["color_swatch"].published_version
    return copy.deepcopy(version.graph), copy.deepcopy(version.schema)


def graph_case(change):
    def build(graph, schema):
        change(graph)
        return graph, schema

    return build


def schema_case(change):
    def build(graph, schema):
        change(schema)
        return graph, schema

    return build


def width(**keywords):
    return schema_case(lambda schema: schema["properties"]["width"].update(keywords))


def _rename_node(graph, old, new):
    graph[new] = graph.pop(old)


REFUSED = {
    "graph nested 10,000 deep": (
        lambda g, s: (DEEP, s),
        "the graph (.api.json) is nested far too deeply",
    ),
    "schema nested 10,000 deep": (
        lambda g, s: (g, DEEP),
        "the schema (.schema.json) is nested far too deeply",
    ),
    "graph not JSON": (lambda g, s: (b'{"1": ', s), "the graph (.api.json) is not valid JSON"),
    "schema not UTF-8": (lambda g, s: (g, b"\xff{}"), "the schema (.schema.json) is not UTF-8"),
    "graph a list": (lambda g, s: (b"[]", s), "the graph (.api.json) must be a JSON object"),
    "graph too large": (
        lambda g, s: (b" " * (2 * 1024 * 1024 + 1), s),
        "the graph (.api.json) is larger than 2 MiB",
    ),
    "schema holds NaN": (
        lambda g, s: (g, json.dumps(s).replace('"maximum": 1024', '"maximum": NaN').encode()),
        "the schema (.schema.json) is not valid JSON: NaN is not a JSON number",
    ),
    "text a database cannot store": (
        graph_case(lambda g: g["3"]["inputs"].update({"filename_prefix": "a\x00b"})),
        "the graph (.api.json) contains a NUL character (at /3/inputs/filename_prefix)",
    ),
    "node not an object": (
        graph_case(lambda g: g.update({"2": "ImageBlur"})),
        "node 2 must be an object",
    ),
    "node id with odd digits": (
        graph_case(lambda g: _rename_node(g, "3", "²")),
        "node id '²' must be letters, digits or '_'",
    ),
    "node id huge": (
        graph_case(lambda g: _rename_node(g, "3", "9" * 10_000)),
        "node id '9999999999999999999999999999999999999999…' must be",
    ),
    "inputs a list": (
        graph_case(lambda g: g["1"].update({"inputs": [256, 256, 1, 0]})),
        "node 1: 'inputs' must be an object of input names to values, not a list",
    ),
    "inputs missing": (graph_case(lambda g: g["3"].pop("inputs")), "node 3 has no 'inputs'"),
    "class_type missing": (graph_case(lambda g: g["3"].pop("class_type")), "node 3 has no"),
    "class_type not a string": (
        graph_case(lambda g: g["3"].update({"class_type": ["SaveImage"]})),
        "node 3: 'class_type' must be the name of a node class",
    ),
    "link to no node": (
        graph_case(lambda g: g["3"]["inputs"].update({"images": ["7", 0]})),
        "node 3: input 'images' links to node '7', which is not in the graph",
    ),
    "properties not an object": (
        schema_case(lambda s: s.update({"properties": [{"type": "integer"}]})),
        "the schema must declare its parameters in 'properties'",
    ),
    "property not an object": (
        schema_case(lambda s: s["properties"].update({"width": 256})),
        "property 'width' must be an object",
    ),
    "x-order not a number": (width(**{"x-order": "second"}), "'x-order' must be a number"),
    "minimum above maximum": (
        width(minimum=2000),
        "property 'width': 'minimum' (2000) must be at most 'maximum' (1024)",
    ),
    "empty exclusive range": (
        width(exclusiveMinimum=1024),
        "'exclusiveMinimum' (1024) must be below 'maximum' (1024)",
    ),
    "minLength above maxLength": (
        width(type="string", minLength=5, maxLength=2, default="abc"),
        "property 'width': 'minLength' (5) is greater than 'maxLength' (2)",
    ),
    "enum empty": (width(enum=[]), "property 'width': 'enum' must be a non-empty list"),
    "enum of the wrong type": (
        width(enum=[256, "512"]),
        "'enum' holds values that are not of type integer: \"512\"",
    ),
    "enum outside the bounds": (
        width(enum=[256, 4096]),
        "property 'width': 'enum' choice 4096 is not allowed",
    ),
    "default outside the bounds": (
        width(default=5000),
        "property 'width': 'default' is not allowed: 5000 is greater than the maximum of 1024",
    ),
    "default outside the enum": (
        width(enum=[128, 512]),
        "property 'width': 'default' is not allowed: 256 is not one of",
    ),
    "default of the wrong type": (width(default="wide"), "'default' must be of type integer"),
    "type unknown": (width(type="integr"), "'type' must be one of integer, number"),
    "type a list": (width(type=["integer", "null"]), "cannot show a list of types"),
    "type object": (width(type="object"), "cannot show type 'object'"),
    "type missing": (
        schema_case(lambda s: s["properties"]["width"].pop("type")),
        "property 'width' has no 'type'",
    ),
    "bindings not a list": (
        width(**{"x-bind": "1.inputs.width"}),
        "property 'width': 'x-bind' must be a non-empty list",
    ),
    "bindings not strings": (
        width(**{"x-bind": [["1", "width"]]}),
        "property 'width': each 'x-bind' entry must be a string",
    ),
    "property name odd": (
        schema_case(lambda s: s["properties"].update({"a b": s["properties"].pop("width")})),
        "property name 'a b' must start with a letter",
    ),
    "image property with a default file": (
        schema_case(
            lambda s: s["properties"].update(
                {
                    "init": {
                        "type": "string",
                        "format": "x-image",
                        "x-bind": ["2.inputs.radius"],
                        "default": "assets/aa/someone-elses-output.png",
                    }
                }
            )
        ),
        "image property 'init' may not have a 'default', 'enum' or 'const'",
    ),
    "ref to a local file": (
        width(**{"$ref": "file:///etc/passwd"}),
        "'$ref' at /properties/width points outside the schema ('file:///etc/passwd')",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_malformed_import_is_refused_with_a_message_and_nothing_stored(
    client, wfadmin, swatch, case
):
    build, words = REFUSED[case]
    shipped = WorkflowVersion.objects.count()
    graph, schema = build(*swatch)
    response = upload(login(client, wfadmin), "imported", graph, schema)
    assert response.status_code == 200
    assert words in html.unescape(response.content.decode())
    assert not Workflow.objects.filter(slug="imported").exists()
    assert WorkflowVersion.objects.count() == shipped


def test_a_ref_to_a_url_is_refused_and_the_url_never_asked(client, wfadmin, swatch, http_trap):
    graph, schema = swatch
    schema["properties"]["width"]["$ref"] = f"{http_trap.url}/x"
    response = upload(login(client, wfadmin), "color_swatch", graph, schema)
    assert response.status_code == 200
    assert "'$ref' at /properties/width points outside" in html.unescape(response.content.decode())
    assert WorkflowVersion.objects.filter(workflow__slug="color_swatch").count() == 1
    assert http_trap.requests == []


@pytest.fixture
def dirs(tmp_path):
    wf, params = tmp_path / "workflows", tmp_path / "params"
    shutil.copytree(settings.WORKFLOWS_DIR, wf)
    shutil.copytree(settings.PARAMS_DIR, params)
    return wf, params


def test_the_loader_refuses_a_url_ref_and_a_deep_file_by_name(db, dirs, capsys, http_trap):
    wf, params = dirs
    path = params / "color_swatch.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"]["height"]["$ref"] = f"{http_trap.url}/x"
    path.write_text(json.dumps(schema))
    (wf / "sdxl_inpaint_masked.api.json").write_bytes(DEEP)
    with pytest.raises(CommandError):
        call_command("load_workflows", "--workflows", str(wf), "--params", str(params))
    err = capsys.readouterr().err
    assert "'$ref' at /properties/height points outside the schema" in err
    assert "sdxl_inpaint_masked.api.json is nested far too deeply" in err
    assert set(Workflow.objects.values_list("slug", flat=True)) == {
        "product_mockup",
        "sdxl_base_refiner",
    }
    assert http_trap.requests == []


def _stored(workflow, graph, schema):
    """A version as an old row may hold it: written without today's import checks."""
    workflow.versions.update(status=WorkflowVersion.Status.RETIRED)
    return WorkflowVersion.objects.create(
        workflow=workflow,
        number=2,
        graph=graph,
        schema=schema,
        checksum="0" * 64,
        status=WorkflowVersion.Status.PUBLISHED,
    )


def test_an_old_version_with_a_url_ref_never_fetches_it(
    client, operator, wfadmin, workflows, swatch, http_trap
):
    graph, schema = swatch
    schema["properties"]["width"]["$ref"] = f"{http_trap.url}/x"
    _stored(workflows["color_swatch"], graph, schema)
    login(client, operator)
    url = reverse("brief_new", args=["color_swatch"])
    response = client.get(url, follow=True)
    assert response.status_code == 200
    assert "cannot take briefs" in html.unescape(response.content.decode())
    assert client.post(url, {"color": "#000000", "width": "256"}).status_code == 302
    assert http_trap.requests == []
    client.logout()
    diff = login(client, wfadmin).get(reverse("manage_workflow", args=["color_swatch"]))
    assert diff.status_code == 200
    assert http_trap.requests == []


def test_the_diff_page_shows_an_old_malformed_version(client, wfadmin, workflows, swatch):
    graph, schema = swatch
    graph["1"]["inputs"] = [256, 256]
    graph["²"] = "ImageBlur"
    schema["properties"]["width"] = 5
    schema["required"] = {"color": True}
    _stored(workflows["color_swatch"], graph, schema)
    response = login(client, wfadmin).get(reverse("manage_workflow", args=["color_swatch"]))
    assert response.status_code == 200
    assert "+ node ²" in response.content.decode()


# -- accepted, if unusual ------------------------------------------------------------------


def renamed_nodes(graph, schema):
    """Word ids, subgraph-style ids and numeric ids that sort as numbers (9 before 10)."""
    for old, new in (("1", "source_a"), ("2", "12:3"), ("3", "10")):
        _rename_node(graph, old, new)
    graph["9"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["12:3", 0], "filename_prefix": "b"},
    }
    graph["12:3"]["inputs"]["image"] = ["source_a", 0]
    graph["10"]["inputs"]["images"] = ["12:3", 0]
    for prop in schema["properties"].values():
        prop["x-bind"] = [
            b.replace("1.", "source_a.", 1).replace("2.", "12:3.", 1) for b in prop["x-bind"]
        ]
    return graph, schema


def form_attribute_names(graph, schema):
    """Properties called like attributes of a Django form, ordered by odd x-order values."""
    props = schema["properties"]
    props["prefix"], props["contract"] = props.pop("width"), props.pop("height")
    props["clean"] = props.pop("blur_radius")
    props["prefix"]["x-order"], props["contract"]["x-order"], props["clean"]["x-order"] = (
        -1,
        2.5,
        1e6,
    )
    return graph, schema


def internal_ref_and_exclusive_bounds(graph, schema):
    schema["$defs"] = {"even": {"multipleOf": 2}}
    schema["properties"]["width"].update({"$ref": "#/$defs/even", "exclusiveMaximum": 1000})
    schema["properties"]["width"].pop("maximum")
    schema["properties"]["blur_radius"] = {
        "type": "integer",
        "enum": [1, 3, 5],
        "default": 3,
        "x-bind": ["2.inputs.blur_radius"],
    }
    return graph, schema


ACCEPTED = {
    "odd node ids": (renamed_nodes, {"width": "256"}, {"width": "99999"}),
    "form attribute names": (
        form_attribute_names,
        {"prefix": "256", "contract": "128", "clean": "2"},
        {"prefix": "1e3", "contract": "x", "clean": "0"},
    ),
    "internal ref, exclusive bounds, enum": (
        internal_ref_and_exclusive_bounds,
        {"width": "998", "blur_radius": "5"},
        {"width": "999", "blur_radius": "4"},
    ),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_an_unusual_import_renders_its_form_takes_briefs_and_diffs(
    client, wfadmin, operator, swatch, case
):
    build, good, bad = ACCEPTED[case]
    graph, schema = build(*swatch)
    response = upload(login(client, wfadmin), "color_swatch", graph, schema)
    assert response.status_code == 302, response.context["form"].non_field_errors()
    diff = client.get(reverse("manage_workflow", args=["color_swatch"]))
    assert diff.status_code == 200 and "v1 → v2" in diff.content.decode()

    client.logout()
    login(client, operator)
    url = reverse("brief_new", args=["color_swatch"])
    assert client.get(url).status_code == 200
    refused = client.post(url, {"color": "#102030", **bad})
    assert refused.status_code == 200
    assert set(refused.context["form"].errors) == set(bad)
    accepted = client.post(url, {"color": "#102030", **good})
    assert accepted.status_code == 302, accepted.context["form"].errors


@pytest.mark.parametrize("query", [{"a": "x"}, {"a": "²"}, {"b": "9" * 5000}, {"a": "99"}])
def test_the_diff_page_names_a_version_it_does_not_have(client, wfadmin, swatch, query):
    from reviewapp.catalog.services import import_version

    graph, schema = swatch
    schema["properties"]["width"]["default"] = 128  # a second version, not the same one
    import_version(
        "color_swatch", json.dumps(graph).encode(), json.dumps(schema).encode(), actor=wfadmin
    )
    client.login(username=wfadmin.username, password=PASSWORD)
    response = client.get(reverse("manage_workflow", args=["color_swatch"]), query)
    assert response.status_code == 400
    assert "is not one of the offered choices" in response.content.decode()
