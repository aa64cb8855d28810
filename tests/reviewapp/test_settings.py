"""Production settings: what a deployment gets when it sets only what it must."""

import json
import os
import subprocess
import sys

from django.conf import settings

READ = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'debug': s.DEBUG, 'hsts': s.SECURE_HSTS_SECONDS, 'ssl_redirect': s.SECURE_SSL_REDIRECT,"
    "'proxy': getattr(s, 'SECURE_PROXY_SSL_HEADER', None)}))"
)


def read_settings(**env):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SECURE_", "AUDIT_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    result = subprocess.run(
        [sys.executable, "-c", READ],
        env={**base, "DJANGO_SETTINGS_MODULE": "reviewapp.settings", **env},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result


def test_debug_is_off_unless_asked_for_so_a_forgotten_variable_refuses_to_start():
    result = read_settings()

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_production_gets_a_years_hsts_and_no_proxy_header_by_default():
    result = read_settings(DJANGO_SECRET_KEY="x" * 50, AUDIT_KEY="y" * 32)

    assert json.loads(result.stdout) == {
        "debug": False,
        "hsts": 31536000,
        "ssl_redirect": True,
        "proxy": None,
    }


def test_the_proxy_ssl_header_is_trusted_only_behind_a_proxy():
    result = read_settings(
        DJANGO_SECRET_KEY="x" * 50, AUDIT_KEY="y" * 32, DJANGO_BEHIND_PROXY="true"
    )

    assert json.loads(result.stdout)["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_development_turns_debug_on_explicitly():
    result = read_settings(DJANGO_DEBUG="1")

    assert json.loads(result.stdout)["debug"] is True


def test_production_refuses_to_start_without_an_audit_key():
    result = read_settings(DJANGO_SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "AUDIT_KEY must be set when DJANGO_DEBUG is off" in result.stderr
