import json
import shutil

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from reviewapp.catalog.models import Workflow, WorkflowVersion


@pytest.fixture
def dirs(tmp_path):
    wf, params = tmp_path / "workflows", tmp_path / "params"
    shutil.copytree(settings.WORKFLOWS_DIR, wf)
    shutil.copytree(settings.PARAMS_DIR, params)
    return wf, params


def load(dirs):
    call_command(
        "load_workflows", "--workflows", str(dirs[0]), "--params", str(dirs[1]), verbosity=0
    )


def test_loading_publishes_one_version_per_workflow(db, dirs):
    load(dirs)
    slugs = set(Workflow.objects.values_list("slug", flat=True))
    assert slugs == {"color_swatch", "product_mockup", "sdxl_base_refiner", "sdxl_inpaint_masked"}
    for wf in Workflow.objects.all():
        assert wf.published_version.number == 1
    # The schema's own title, the one the workflow list shows, not one made from the slug.
    assert Workflow.objects.get(slug="color_swatch").title == "Colour swatch"
    assert Workflow.objects.get(slug="sdxl_base_refiner").title == "SDXL base + refiner"


def test_loading_again_changes_nothing(db, dirs):
    load(dirs)
    load(dirs)
    assert WorkflowVersion.objects.count() == 4


def test_a_changed_file_makes_a_new_published_version_and_keeps_the_old(db, dirs):
    load(dirs)
    path = dirs[0] / "color_swatch.api.json"
    graph = json.loads(path.read_text())
    graph["2"]["inputs"]["sigma"] = 2.0
    path.write_text(json.dumps(graph))
    load(dirs)
    versions = WorkflowVersion.objects.filter(workflow__slug="color_swatch").order_by("number")
    assert [(v.number, v.status) for v in versions] == [(1, "retired"), (2, "published")]
    assert versions[0].graph["2"]["inputs"]["sigma"] == 1.0


def test_a_version_cannot_be_edited(db, dirs):
    load(dirs)
    version = WorkflowVersion.objects.get(workflow__slug="color_swatch")
    version.graph["2"]["inputs"]["sigma"] = 3.0
    with pytest.raises(ValueError, match="immutable"):
        version.save()


@pytest.mark.parametrize(
    ("prop", "target", "words"),
    [
        ("steps", "5.inputs.steps", ["steps", "5.inputs.steps", "EmptyLatentImage"]),
        ("cfg", "4.inputs.cfg", ["cfg", "4.inputs.cfg", "CheckpointLoaderSimple"]),
    ],
)
def test_the_playbook_binding_mistakes_are_refused_by_name(db, dirs, capsys, prop, target, words):
    path = dirs[1] / "sdxl_base_refiner.schema.json"
    schema = json.loads(path.read_text())
    schema["properties"][prop]["x-bind"] = [target]
    path.write_text(json.dumps(schema))
    with pytest.raises(CommandError):
        load(dirs)
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not Workflow.objects.filter(slug="sdxl_base_refiner").exists()
    # The other workflows still load.
    assert Workflow.objects.filter(slug="color_swatch").exists()


def test_a_workflow_without_its_schema_is_refused(db, dirs, capsys):
    (dirs[1] / "color_swatch.schema.json").unlink()
    with pytest.raises(CommandError):
        load(dirs)
    assert "color_swatch.schema.json: missing" in capsys.readouterr().err
