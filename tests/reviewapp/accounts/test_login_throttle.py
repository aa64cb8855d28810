"""The sign-in throttle: per (account, address), per address, on both login pages."""

from unittest import mock

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.backends import ModelBackend
from django.test import RequestFactory
from django.urls import reverse

from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

ACCOUNT_LOCKED = "Too many failed sign-ins for this account from your address"
ADDRESS_LOCKED = "Too many failed sign-ins from your address"


@pytest.fixture(autouse=True)
def throttle_redis(settings, redis_url):
    settings.REDIS_URL = redis_url


def sign_in(client, username, password, *, address="127.0.0.1", url="login"):
    return client.post(
        reverse(url), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def sign_in_rows():
    return AuditEvent.objects.filter(action__startswith="auth.")


def fail(client, username, times, **kwargs):
    for _ in range(times):
        response = sign_in(client, username, "wrong-password", **kwargs)
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()


def test_it_locks_an_account_out_from_an_address_after_five_failures(client, operator):
    fail(client, operator.username, 5)

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert f"{ACCOUNT_LOCKED}; try again in 15 minutes." in page
    assert "_auth_user_id" not in client.session


def test_a_locked_out_attempt_does_not_check_the_password(client, operator):
    fail(client, operator.username, 5)

    with mock.patch.object(ModelBackend, "authenticate", side_effect=AssertionError) as check:
        response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    check.assert_not_called()


def test_the_lockout_holds_only_for_that_account_from_that_address(client, operator, reviewer):
    fail(client, operator.username, 5)

    assert sign_in(client, operator.username, PASSWORD, address="10.0.0.2").status_code == 302
    client.logout()
    assert sign_in(client, reviewer.username, PASSWORD).status_code == 302


def test_an_unknown_name_is_locked_out_like_a_real_one(client):
    fail(client, "nobody-here", 5)

    response = sign_in(client, "nobody-here", "anything")

    assert response.status_code == 429
    assert ACCOUNT_LOCKED in response.content.decode()


def test_names_differing_in_case_share_one_budget(client, operator):
    fail(client, operator.username.upper(), 5)

    assert sign_in(client, operator.username, PASSWORD).status_code == 429


def test_a_successful_sign_in_forgives_the_accounts_failures(client, operator):
    fail(client, operator.username, 4)
    assert sign_in(client, operator.username, PASSWORD).status_code == 302
    client.logout()

    fail(client, operator.username, 4)

    assert sign_in(client, operator.username, PASSWORD).status_code == 302


def test_an_address_is_refused_past_the_looser_per_address_limit(client, operator):
    for i in range(50):
        fail(client, f"guess-{i}", 1)

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    assert f"{ADDRESS_LOCKED}; try again in 15 minutes." in response.content.decode()
    assert sign_in(client, operator.username, PASSWORD, address="10.0.0.3").status_code == 302


def test_successful_sign_ins_do_not_use_up_the_addresss_budget(client, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    user = make_user("office")
    for _ in range(5):
        assert sign_in(client, user.username, PASSWORD).status_code == 302
        client.logout()


def test_django_admins_login_page_shares_the_throttle(client):
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    fail(client, "root", 3)
    fail(client, "root", 2, url="admin:login")

    response = sign_in(client, "root", PASSWORD, url="admin:login")

    assert response.status_code == 200
    assert ACCOUNT_LOCKED in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert sign_in(client, "root", PASSWORD).status_code == 429


def test_the_limits_and_window_come_from_settings(client, operator, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    settings.LOGIN_FAILURE_WINDOW_S = 60
    fail(client, operator.username, 2)

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    assert "try again in 1 minute." in response.content.decode()


def test_sign_in_is_refused_when_the_throttle_cannot_reach_redis(client, operator, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = sign_in(client, operator.username, PASSWORD)

    assert response.status_code == 429
    assert "Sign-in is unavailable for a moment" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_scripts_calling_authenticate_without_a_request_are_not_throttled(operator):
    for _ in range(6):
        assert authenticate(username=operator.username, password="wrong-password") is None
    assert authenticate(username=operator.username, password=PASSWORD) == operator


def test_the_first_failure_and_the_lockout_are_audited(client, operator):
    fail(client, operator.username, 5)
    sign_in(client, operator.username, PASSWORD)

    rows = list(sign_in_rows().order_by("id"))
    assert [row.action for row in rows] == [actions.LOGIN_FAILED, actions.LOGIN_LOCKED_OUT]
    failed, locked = rows
    assert failed.target_id == str(operator.pk)
    assert failed.changes == {"username": "olivia", "client": "127.0.0.1"}
    assert locked.changes == {
        "scope": "account",
        "username": "olivia",
        "client": "127.0.0.1",
        "failures": 5,
        "window_s": 900,
        "locked_for_s": 900,
    }
    assert all("wrong-password" not in str(row.changes) for row in rows)


def test_a_flood_of_failures_writes_a_constant_number_of_audit_rows(operator):
    request = RequestFactory().post("/login/", REMOTE_ADDR="192.0.2.7")
    for _ in range(10_000):
        assert authenticate(request, username=operator.username, password="x") is None

    assert sign_in_rows().count() == 2  # the first failure, the lockout


def test_spraying_many_names_from_one_address_writes_a_bounded_number_of_rows(settings):
    request = RequestFactory().post("/login/", REMOTE_ADDR="192.0.2.8")
    for i in range(10_000):
        authenticate(request, username=f"name-{i}", password="x")

    # One first failure per name until the address is locked out, and that lockout.
    assert AuditEvent.objects.filter(action=actions.LOGIN_FAILED).count() == 50
    assert AuditEvent.objects.filter(action=actions.LOGIN_LOCKED_OUT).count() == 1
