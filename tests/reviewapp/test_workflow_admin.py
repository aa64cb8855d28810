import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from reviewapp.catalog.diff import diff_versions
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.review import services as review
from tests.conftest import PASSWORD
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


def upload(client, slug, graph, schema, publish=True):
    return client.post(
        reverse("manage_import"),
        {
            "slug": slug,
            "graph": SimpleUploadedFile("g.api.json", json.dumps(graph).encode()),
            "schema": SimpleUploadedFile("s.schema.json", json.dumps(schema).encode()),
            "publish": "on" if publish else "",
        },
    )


@pytest.fixture
def admin_client(client, wfadmin):
    client.login(username=wfadmin.username, password=PASSWORD)
    return client


@pytest.fixture
def swatch(workflows):
    version = workflows["color_swatch"].published_version
    return copy.deepcopy(version.graph), copy.deepcopy(version.schema)


def test_import_refuses_a_bad_binding_in_plain_words(admin_client, swatch):
    graph, schema = swatch
    schema["properties"]["width"]["x-bind"] = ["3.inputs.width"]
    response = upload(admin_client, "color_swatch", graph, schema)
    errors = " ".join(response.context["form"].non_field_errors())
    assert "property 'width'" in errors and "3.inputs.width" in errors and "SaveImage" in errors
    assert WorkflowVersion.objects.filter(workflow__slug="color_swatch").count() == 1


def test_import_refuses_an_unknown_node_class_and_an_invalid_schema(admin_client, swatch):
    graph, schema = swatch
    graph["2"]["class_type"] = "NoSuchNode"
    errors = " ".join(upload(admin_client, "x", graph, schema).context["form"].non_field_errors())
    assert "NoSuchNode" in errors
    graph, schema = copy.deepcopy(swatch)
    schema["properties"]["width"]["minimum"] = "small"
    errors = " ".join(upload(admin_client, "x", graph, schema).context["form"].non_field_errors())
    assert "invalid JSON Schema" in errors


def test_import_explains_a_ui_format_export(admin_client, swatch):
    _, schema = swatch
    response = upload(admin_client, "x", {"nodes": [], "links": []}, schema)
    assert "Export (API)" in " ".join(response.context["form"].non_field_errors())


def test_a_new_version_shows_its_diff_and_old_briefs_keep_their_version(
    admin_client, client, operator, reviewer, swatch
):
    generation = awaiting_generation(operator)
    graph, schema = swatch
    graph["2"]["inputs"]["sigma"] = 3.5
    schema["properties"]["width"]["maximum"] = 512
    response = upload(admin_client, "color_swatch", graph, schema)
    assert response.status_code == 302
    v1, v2 = WorkflowVersion.objects.filter(workflow__slug="color_swatch").order_by("number")
    assert (v1.status, v2.status) == ("retired", "published")

    page = admin_client.get(reverse("manage_workflow", args=["color_swatch"])).content.decode()
    assert "<code>sigma</code>: 1.0 → 3.5" in page
    assert "<code>width</code> maximum: 1024 → 512" in page

    # The old brief still renders and regenerates with the version it pinned.
    client.logout()
    client.login(username=reviewer.username, password=PASSWORD)
    assert client.get(reverse("generation_detail", args=[generation.pk])).status_code == 200
    child = review.regenerate(generation, actor=reviewer)
    assert child.brief.workflow_version == v1


def test_publish_retire_and_roll_back(admin_client, swatch):
    graph, schema = swatch
    graph["2"]["inputs"]["sigma"] = 2.0
    upload(admin_client, "color_swatch", graph, schema, publish=False)
    v1, v2 = WorkflowVersion.objects.filter(workflow__slug="color_swatch").order_by("number")
    assert (v1.status, v2.status) == ("published", "draft")
    admin_client.post(reverse("version_publish", args=["color_swatch", 2]))
    admin_client.post(reverse("version_publish", args=["color_swatch", 1]))  # roll back
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.status, v2.status) == ("published", "retired")
    admin_client.post(reverse("version_retire", args=["color_swatch", 1]))
    v1.refresh_from_db()
    assert v1.status == "retired"
    assert not WorkflowVersion.objects.filter(status="published", workflow__slug="color_swatch")


def test_diff_lists_nodes_added_and_removed(swatch):
    graph, schema = swatch

    class V:
        def __init__(self, graph, schema):
            self.graph, self.schema = graph, schema

    new_graph = copy.deepcopy(graph)
    new_graph["9"] = {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}}
    del new_graph["2"]
    diff = diff_versions(V(graph, schema), V(new_graph, schema))
    assert diff.nodes_added == [("9", "ImageInvert")]
    assert diff.nodes_removed == [("2", "ImageBlur")]
