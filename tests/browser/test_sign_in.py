"""Signing in, being locked out, and Django admin's pages under the site's CSP."""

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, username, password, path="/login/"):
    page.goto(f"{live_server.url}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[type=submit]")


def test_a_locked_out_person_is_told_why_and_for_how_long(
    page, screenshot, live_server, operator, settings, redis_url
):
    settings.REDIS_URL = redis_url
    for _ in range(5):
        sign_in(page, live_server, operator.username, "wrong-password")

    sign_in(page, live_server, operator.username, PASSWORD)

    expect(page.locator(".errors")).to_contain_text(
        "Too many failed sign-ins for this account from your address; try again in 15 minutes."
    )
    screenshot("sign_in_locked_out")


def test_an_admin_edits_a_user_and_a_workflow_without_tripping_the_csp(
    page, live_server, workflows, settings, redis_url
):
    settings.REDIS_URL = redis_url
    root = make_user("root")
    root.is_staff = root.is_superuser = True
    root.save()
    sign_in(page, live_server, "root", PASSWORD, path="/admin/login/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    page.goto(f"{live_server.url}/admin/auth/user/{root.pk}/change/")
    expect(page.locator("#id_groups_from")).to_be_visible()  # the filter widget's script ran
    page.goto(f"{live_server.url}/admin/catalog/workflow/{workflows['color_swatch'].pk}/change/")
    page.fill("#id_required_approvals", "2")
    page.click("[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
