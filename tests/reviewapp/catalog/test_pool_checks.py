"""`manage.py check` names every workflow in a pool that is not configured and every
misconfigured pool; on a database not migrated yet it says nothing rather than failing."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from reviewapp.catalog.models import Workflow
from reviewapp.lib.pools import rq_queues


def pool_messages(databases=None):
    return [
        (message.id, message.msg)
        for message in checks.run_checks(tags=["pools"], databases=databases)
    ]


@pytest.fixture
def sdxl_only(settings):
    settings.COMFYUI_POOLS = {"sdxl": ("http://gpu1:8188",), "cpu": ("http://cpu1:8188",)}
    settings.RQ_QUEUES = rq_queues(settings.COMFYUI_POOLS, "redis://127.0.0.1:9/0", 300)


@pytest.fixture(autouse=True)
def _no_pool_variables(monkeypatch):
    monkeypatch.delenv("COMFYUI_POOLS", raising=False)
    monkeypatch.delenv("COMFYUI_URL", raising=False)


def test_the_shipped_configuration_passes(db, workflows):
    assert pool_messages(databases=["default"]) == []


@pytest.mark.django_db
def test_check_names_each_workflow_whose_pool_is_not_configured(workflows, sdxl_only):
    Workflow.objects.filter(slug="sdxl_base_refiner").update(pool="sdxl")

    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--database", "default")

    output = str(caught.value)
    for slug in ("color_swatch", "sdxl_inpaint_masked"):
        assert (
            f"(reviewapp.E011) workflow {slug!r} runs in pool 'default', which is not "
            "configured (configured pools: sdxl, cpu)"
        ) in output
    assert "sdxl_base_refiner" not in output


@pytest.mark.django_db
def test_plain_check_leaves_the_database_alone(workflows, sdxl_only):
    # Without --database Django asks no database; `migrate` and `check --database` do.
    assert pool_messages() == []
    call_command("check")


def test_a_pool_without_a_backend_is_a_warning(settings):
    settings.COMFYUI_POOLS = {"default": ()}

    assert pool_messages() == [
        (
            "reviewapp.W010",
            "pool 'default' has no backend: its generations wait until one is added",
        )
    ]


def test_both_variables_set_warns_that_comfyui_url_is_ignored(monkeypatch):
    monkeypatch.setenv("COMFYUI_POOLS", "default=http://127.0.0.1:8188")
    monkeypatch.setenv("COMFYUI_URL", "http://127.0.0.1:8189")

    assert pool_messages() == [
        ("reviewapp.W011", "COMFYUI_POOLS and COMFYUI_URL are both set: COMFYUI_URL is ignored")
    ]


def test_a_malformed_setting_is_an_error_per_problem(db, settings):
    # A settings module may set COMFYUI_POOLS itself, past the parser.
    settings.COMFYUI_POOLS = {"GPU": ("http://gpu1:8188",), "cpu": ("ftp://cpu1", "http://x")}

    assert pool_messages(databases=["default"]) == [
        (
            "reviewapp.E010",
            "COMFYUI_POOLS: pool name 'GPU' must be 1 to 64 lowercase letters, digits, '_' or '-'",
        ),
        (
            "reviewapp.E010",
            "COMFYUI_POOLS: pool 'cpu': URL 'ftp://cpu1' must be http:// or https:// with a host",
        ),
    ]


def test_a_pool_without_its_rq_queue_is_an_error(settings):
    settings.COMFYUI_POOLS = {"default": ("http://127.0.0.1:8188",), "sdxl": ("http://g:1",)}
    settings.RQ_QUEUES = rq_queues({"default": ()}, "redis://127.0.0.1:9/0", 300)

    assert pool_messages() == [
        ("reviewapp.E012", "pool 'sdxl' has no RQ queue: RQ_QUEUES has no entry 'sdxl'")
    ]


def manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_on_a_database_before_and_during_migration(tmp_path):
    """`migrate` runs the checks first: on an empty database, and on one whose catalog
    still has Workflow.queue, the workflow check must not fail."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMFYUI_")}
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    steps = [
        ("check", "--database", "default"),
        ("migrate", "catalog", "0003", "-v", "0"),
        ("check", "--database", "default"),
        ("migrate", "-v", "0"),
        ("load_workflows", "-v", "0"),
    ]
    for step in steps:
        result = manage(*step, env=env)
        assert result.returncode == 0, (step, result.stderr)

    result = manage("check", "--database", "default", env={**env, "COMFYUI_POOLS": "a=http://a"})

    assert result.returncode == 1
    assert "workflow 'color_swatch' runs in pool 'default', which is not configured" in (
        result.stderr
    )
