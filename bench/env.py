"""The benchmark's own environment: a scratch VAR_DIR, Redis, a migrated database.

Everything is set in ``os.environ`` before Django starts, so the worker processes the
benchmark starts read the same settings as the benchmark process.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    os.environ["VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "var" / "media")
    # Production-like: DEBUG off (no query log, no debug pages), plain HTTP on localhost.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_SECRET_KEY"] = "bench-only-" + os.urandom(24).hex()
    os.environ["AUDIT_KEY"] = "bench-only-" + os.urandom(24).hex()
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    (tmp / "var" / "media").mkdir(parents=True)
    redis = None
    if not os.environ.get("REDIS_URL"):
        from reviewapp.lib.devredis import EmbeddedRedis

        redis = EmbeddedRedis().start()
        atexit.register(redis.stop)
        os.environ["REDIS_URL"] = redis.url

    import django

    django.setup()
    from django.core.management import call_command

    if os.environ.get("DATABASE_URL"):
        # A database of its own is the caller's business; it is emptied first.
        call_command("migrate", verbosity=0)
        from django.db import connection

        if connection.vendor == "postgresql":
            # The audit tables refuse TRUNCATE unless a superuser says this is a
            # throwaway database (as the test suite does).
            with connection.cursor() as cursor:
                cursor.execute("SET audit.allow_truncate = 'on'")
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    # Its report would mix with the JSON lines on stdout.
    call_command("load_workflows", verbosity=0, stdout=io.StringIO())
    return {"tmp": tmp, "database": _db_label()}


def _db_label() -> str:
    from django.db import connection

    return connection.vendor


def users():
    from django.contrib.auth.models import Group, User

    from reviewapp.accounts import roles

    made = {}
    for name, role in (
        ("bench-operator", roles.OPERATOR),
        ("bench-reviewer", roles.REVIEWER),
        ("bench-auditor", roles.AUDITOR),
    ):
        user, created = User.objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.set([Group.objects.get_or_create(name=role)[0]])
        made[role] = user
    return made
