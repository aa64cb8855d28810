"""Pool configuration: the COMFYUI_POOLS parser, the settings built from the environment,
and one RQ queue per pool on real Redis."""

import json
import os
import subprocess
import sys

import pytest
import redis as redis_lib
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from reviewapp.lib.pools import (
    UnknownPool,
    backends_of,
    default_pool,
    parse_pools,
    pool_names,
    pools_from_env,
    rq_queues,
    shown_url,
)
from tests.conftest import run_worker


def test_it_parses_pools_in_the_order_written():
    pools = parse_pools(" sdxl = http://gpu1:8188, https://gpu2:8188/ ; cpu=http://cpu1:8188; ")

    assert pools == {
        "sdxl": ("http://gpu1:8188", "https://gpu2:8188/"),
        "cpu": ("http://cpu1:8188",),
    }
    assert list(pools) == ["sdxl", "cpu"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=http://gpu1:8188", "'=http://gpu1:8188': the pool has no name before '='"),
        ("SDXL=http://gpu1:8188", "pool name 'SDXL' must be 1 to 64 lowercase letters"),
        ("sd xl=http://gpu1:8188", "pool name 'sd xl' must be"),
        ("gpu.a=http://gpu1:8188", "pool name 'gpu.a' must be"),
        ("a=http://x:1;b=http://y:1;a=http://z:1", "pool 'a' is defined twice"),
        ("a=http://x:1;b=http://x:1/", "pool 'b': URL 'http://x:1/' is already in pool 'a'"),
        ("a=http://x:1,http://x:1", "pool 'a': URL 'http://x:1' is listed twice"),
        ("a=http://x:1;b=", "pool 'b' has no URL"),
        ("a= , ", "pool 'a' has no URL"),
        ("a=ftp://gpu1:8188", "pool 'a': URL 'ftp://gpu1:8188' must be http:// or https://"),
        ("a=gpu1:8188", "pool 'a': URL 'gpu1:8188' must be http:// or https://"),
        ("a=http://", "pool 'a': URL 'http://' must be http:// or https:// with a host"),
        ("a=http://gpu1:99999", "pool 'a': URL 'http://gpu1:99999' cannot be parsed"),
        ("sdxl", "'sdxl' is not NAME=URL[,URL...]"),
        ("", "no pool is defined"),
        (" ; ", "no pool is defined"),
    ],
)
def test_each_mistake_is_refused_naming_the_bad_part(text, message):
    with pytest.raises(ValueError) as caught:
        parse_pools(text)

    assert message in str(caught.value)


def test_a_password_in_a_url_is_not_repeated_in_an_error():
    with pytest.raises(ValueError) as caught:
        parse_pools("a=http://ann:s3cret@gpu1:8188;b=http://ann:s3cret@gpu1:8188")

    assert "s3cret" not in str(caught.value)
    assert "http://ann:***@gpu1:8188" in str(caught.value)
    assert shown_url("https://gpu1:8188/x") == "https://gpu1:8188/x"


def test_comfyui_pools_wins_over_comfyui_url():
    env = {
        "COMFYUI_POOLS": "sdxl=http://gpu1:8188;cpu=http://cpu1:8188",
        "COMFYUI_URL": "http://x:1",
    }

    assert pools_from_env(env) == {"sdxl": ("http://gpu1:8188",), "cpu": ("http://cpu1:8188",)}


def test_comfyui_url_is_the_one_pool_shorthand():
    assert pools_from_env({"COMFYUI_URL": "http://a:8188, http://b:8188"}) == {
        "default": ("http://a:8188", "http://b:8188")
    }
    assert pools_from_env({"COMFYUI_POOLS": "  "}) == {"default": ("http://127.0.0.1:8188",)}
    assert pools_from_env({}) == {"default": ("http://127.0.0.1:8188",)}
    # Set and empty: a pool without a backend, which the system check warns about.
    assert pools_from_env({"COMFYUI_URL": ""}) == {"default": ()}


def test_a_bad_value_is_improperly_configured_in_the_parsers_words():
    with pytest.raises(ImproperlyConfigured, match=r"^COMFYUI_POOLS: pool 'cpu' has no URL$"):
        pools_from_env({"COMFYUI_POOLS": "sdxl=http://gpu1:8188;cpu="})
    with pytest.raises(ImproperlyConfigured, match=r"^COMFYUI_URL: pool 'default': URL 'gpu1"):
        pools_from_env({"COMFYUI_URL": "gpu1:8188"})


def test_the_helpers_read_the_setting(settings):
    settings.COMFYUI_POOLS = {"sdxl": ("http://gpu1:8188", "http://gpu2:8188"), "cpu": ()}

    assert pool_names() == ["sdxl", "cpu"]
    assert default_pool() == "sdxl"
    assert backends_of("sdxl") == ("http://gpu1:8188", "http://gpu2:8188")
    assert backends_of("cpu") == ()
    with pytest.raises(UnknownPool, match=r"pool 'gpu' is not configured; .*: sdxl, cpu"):
        backends_of("gpu")
    settings.COMFYUI_POOLS = {}
    with pytest.raises(UnknownPool, match="no pool is configured"):
        default_pool()


def double(number):
    return number * 2


def test_every_pool_has_its_own_rq_queue(settings, redis_url):
    import django_rq

    pools = pools_from_env({"COMFYUI_POOLS": "sdxl=http://gpu1:8188;cpu=http://cpu1:8188"})
    settings.COMFYUI_POOLS = pools
    settings.RQ_QUEUES = rq_queues(pools, redis_url, 300)
    redis_lib.from_url(redis_url).flushdb()

    cpu = django_rq.get_queue("cpu")
    job = cpu.enqueue(double, 21)

    assert (cpu.name, cpu.count, django_rq.get_queue("sdxl").count) == ("cpu", 1, 0)
    run_worker(cpu)
    job.refresh()
    assert job.return_value() == 42
    with pytest.raises(KeyError):
        django_rq.get_queue("default")  # no pool of that name, so no queue either
    redis_lib.from_url(redis_url).flushdb()


READ = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'pools': s.COMFYUI_POOLS, 'urls': s.COMFYUI_URLS, 'queues': sorted(s.RQ_QUEUES)}))"
)


def read_settings(**env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMFYUI_")}
    return subprocess.run(
        [sys.executable, "-c", READ],
        env={**base, "DJANGO_SETTINGS_MODULE": "reviewapp.settings", "DJANGO_DEBUG": "1", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_hold_the_pools_every_url_and_a_queue_per_pool():
    result = read_settings(COMFYUI_POOLS="sdxl=http://gpu1:8188,http://gpu2:8188;cpu=http://c:1")

    assert json.loads(result.stdout) == {
        "pools": {"sdxl": ["http://gpu1:8188", "http://gpu2:8188"], "cpu": ["http://c:1"]},
        "urls": ["http://gpu1:8188", "http://gpu2:8188", "http://c:1"],
        "queues": ["cpu", "sdxl"],
    }


def test_settings_refuse_to_start_on_a_bad_pool():
    result = read_settings(COMFYUI_POOLS="sdxl=http://gpu1:8188;SDXL=http://gpu2:8188")

    assert result.returncode != 0
    assert "ImproperlyConfigured: COMFYUI_POOLS: pool name 'SDXL' must be" in result.stderr
