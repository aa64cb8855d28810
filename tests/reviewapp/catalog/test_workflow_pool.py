"""Workflow.pool holds a configured pool wherever it is set: the Django admin, the import
page, load_workflows; and a workflow's jobs go on its pool's queue."""

import copy
import json
import shutil

import pytest
import redis as redis_lib
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from reviewapp.catalog.models import Workflow
from reviewapp.lib.pools import rq_queues
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import submit_swatch

pytestmark = pytest.mark.django_db

CONFIGURED = "the configured pools are: default, sdxl"


@pytest.fixture
def two_pools(settings, redis_url):
    settings.COMFYUI_POOLS = {"default": ("http://127.0.0.1:9",), "sdxl": ("http://127.0.0.1:10",)}
    settings.RQ_QUEUES = rq_queues(settings.COMFYUI_POOLS, redis_url, 300)
    return settings.COMFYUI_POOLS


@pytest.fixture
def root_client(client):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    assert client.login(username="root", password=PASSWORD)
    return client


def change_workflow(client, workflow, **fields):
    versions = list(workflow.versions.all())
    data = {
        "title": workflow.title,
        "description": workflow.description,
        "pool": workflow.pool,
        "required_approvals": workflow.required_approvals,
        "queue_timeout_s": workflow.queue_timeout_s,
        "run_timeout_s": workflow.run_timeout_s,
        "campaign_breaker_min_decided": workflow.campaign_breaker_min_decided,
        "campaign_breaker_max_reject_rate": workflow.campaign_breaker_max_reject_rate,
        "versions-TOTAL_FORMS": len(versions),
        "versions-INITIAL_FORMS": len(versions),
        **{f"versions-{i}-id": v.pk for i, v in enumerate(versions)},
        **{f"versions-{i}-workflow": workflow.pk for i in range(len(versions))},
        **fields,
    }
    return client.post(reverse("admin:catalog_workflow_change", args=[workflow.pk]), data)


def changed_rows():
    return list(AuditEvent.objects.filter(action=actions.WORKFLOW_CHANGED).order_by("id"))


def test_the_admin_offers_the_configured_pools(root_client, workflows, two_pools):
    workflow = workflows["color_swatch"]
    page = root_client.get(reverse("admin:catalog_workflow_change", args=[workflow.pk]))

    field = page.context["adminform"].form["pool"]
    assert list(field.field.widget.choices) == [("default", "default"), ("sdxl", "sdxl")]
    assert field.value() == "default"


def test_the_admin_moves_a_workflow_to_another_pool_and_audits_it(
    root_client, workflows, two_pools
):
    workflow = workflows["color_swatch"]

    assert change_workflow(root_client, workflow, pool="sdxl").status_code == 302

    workflow.refresh_from_db()
    assert workflow.pool == "sdxl"
    (row,) = changed_rows()
    assert (row.actor_name, row.changes) == ("root", {"pool": ["default", "sdxl"]})


def test_the_admin_refuses_an_unknown_pool_naming_the_configured_ones(
    root_client, workflows, two_pools
):
    workflow = workflows["color_swatch"]

    response = change_workflow(root_client, workflow, pool="gpu")

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"pool": [f"Pool 'gpu' is not configured; {CONFIGURED}."]}
    workflow.refresh_from_db()
    assert workflow.pool == "default"
    assert changed_rows() == []


def test_a_workflow_left_in_an_unconfigured_pool_shows_it_and_must_be_moved(
    root_client, workflows, two_pools
):
    Workflow.objects.filter(slug="color_swatch").update(pool="gpu")
    workflow = Workflow.objects.get(slug="color_swatch")
    page = root_client.get(reverse("admin:catalog_workflow_change", args=[workflow.pk]))

    field = page.context["adminform"].form["pool"]
    assert ("gpu", "gpu (not configured)") in list(field.field.widget.choices)
    assert field.value() == "gpu"  # not silently shown as the first pool
    # Saving another setting as it stands is refused, so the pool is never moved unasked.
    response = change_workflow(root_client, workflow, required_approvals=2)
    assert response.context["adminform"].form.errors["pool"] == [
        f"Pool 'gpu' is not configured; {CONFIGURED}."
    ]
    assert change_workflow(root_client, workflow, pool="sdxl").status_code == 302


# -- the import page ------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, wfadmin):
    assert client.login(username=wfadmin.username, password=PASSWORD)
    return client


@pytest.fixture
def swatch(workflows):
    version = workflows["color_swatch"].published_version
    return copy.deepcopy(version.graph), copy.deepcopy(version.schema)


def upload(client, slug, graph, schema):
    return client.post(
        reverse("manage_import"),
        {
            "slug": slug,
            "graph": SimpleUploadedFile("g.api.json", json.dumps(graph).encode()),
            "schema": SimpleUploadedFile("s.schema.json", json.dumps(schema).encode()),
            "publish": "on",
        },
    )


def test_an_import_naming_an_unknown_pool_is_refused_naming_the_file(
    admin_client, swatch, two_pools
):
    graph, schema = swatch
    schema["x-pool"] = "gpu"

    response = upload(admin_client, "swatch_gpu", graph, schema)

    assert response.status_code == 200
    assert list(response.context["form"].non_field_errors()) == [
        f"the schema (.schema.json): 'x-pool': pool 'gpu' is not configured; {CONFIGURED}"
    ]
    assert not Workflow.objects.filter(slug="swatch_gpu").exists()


def test_an_unknown_pool_is_listed_with_the_files_other_problems(admin_client, swatch, two_pools):
    graph, schema = swatch
    schema["x-pool"] = 7
    schema["properties"]["width"]["x-bind"] = ["3.inputs.width"]

    errors = list(upload(admin_client, "x", graph, schema).context["form"].non_field_errors())

    assert len(errors) == 2
    assert "3.inputs.width" in errors[0]
    assert errors[1].startswith("the schema (.schema.json): 'x-pool': pool 7 is not configured")


def test_an_import_places_a_new_workflow_in_the_pool_it_names(admin_client, swatch, two_pools):
    graph, schema = swatch
    schema["x-pool"] = "sdxl"

    assert upload(admin_client, "swatch_sdxl", graph, schema).status_code == 302

    assert Workflow.objects.get(slug="swatch_sdxl").pool == "sdxl"


def test_a_new_workflow_naming_no_pool_goes_to_the_first_one(admin_client, swatch, settings):
    settings.COMFYUI_POOLS = {"cpu": ("http://127.0.0.1:9",), "default": ()}
    graph, schema = swatch

    assert upload(admin_client, "swatch_copy", graph, schema).status_code == 302

    assert Workflow.objects.get(slug="swatch_copy").pool == "cpu"


def test_a_new_version_naming_another_pool_leaves_the_workflow_where_it_runs(
    admin_client, swatch, two_pools
):
    graph, schema = swatch
    schema["x-pool"] = "sdxl"

    response = upload(admin_client, "color_swatch", graph, schema)

    assert response.status_code == 302
    assert Workflow.objects.get(slug="color_swatch").pool == "default"
    notes = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert notes == [
        "color_swatch: v2 names pool 'sdxl' but the workflow runs in pool 'default'; "
        "change the workflow's pool in the admin to move it"
    ]


# -- load_workflows -------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path):
    wf, params = tmp_path / "workflows", tmp_path / "params"
    shutil.copytree(settings.WORKFLOWS_DIR, wf)
    shutil.copytree(settings.PARAMS_DIR, params)
    return wf, params


def declare_pool(dirs, slug, pool):
    path = dirs[1] / f"{slug}.schema.json"
    schema = json.loads(path.read_text())
    schema["x-pool"] = pool
    path.write_text(json.dumps(schema))


def load(dirs):
    call_command("load_workflows", "--workflows", str(dirs[0]), "--params", str(dirs[1]))


def test_load_workflows_refuses_a_file_naming_an_unknown_pool(db, dirs, two_pools, capsys):
    declare_pool(dirs, "color_swatch", "gpu")

    with pytest.raises(CommandError, match="1 workflow"):
        load(dirs)

    err = capsys.readouterr().err
    assert "color_swatch: refused" in err
    assert f"color_swatch.schema.json: 'x-pool': pool 'gpu' is not configured; {CONFIGURED}" in err
    assert set(Workflow.objects.values_list("slug", flat=True)) == {
        "product_mockup",
        "sdxl_base_refiner",
        "sdxl_inpaint_masked",
    }


def test_load_workflows_places_each_workflow_in_the_pool_its_file_names(db, dirs, two_pools):
    declare_pool(dirs, "sdxl_base_refiner", "sdxl")

    load(dirs)

    assert dict(Workflow.objects.values_list("slug", "pool")) == {
        "color_swatch": "default",
        "product_mockup": "default",
        "sdxl_base_refiner": "sdxl",
        "sdxl_inpaint_masked": "default",
    }


def test_load_workflows_notes_a_changed_pool_instead_of_moving_the_workflow(
    db, dirs, two_pools, capsys
):
    load(dirs)
    declare_pool(dirs, "color_swatch", "sdxl")

    load(dirs)

    assert Workflow.objects.get(slug="color_swatch").pool == "default"
    assert "note: color_swatch: v2 names pool 'sdxl'" in capsys.readouterr().err


# -- the queue ------------------------------------------------------------------------------


def test_a_workflows_generations_go_on_its_pools_queue(
    operator, workflows, two_pools, redis_url, django_capture_on_commit_callbacks
):
    import django_rq

    redis_lib.from_url(redis_url).flushdb()
    Workflow.objects.filter(slug="color_swatch").update(pool="sdxl")

    with django_capture_on_commit_callbacks(execute=True):
        brief = submit_swatch(operator)

    sdxl = django_rq.get_queue("sdxl")
    assert sdxl.job_ids == [f"generation-{brief.generations.get().pk}"]
    assert django_rq.get_queue("default").count == 0
    redis_lib.from_url(redis_url).flushdb()
