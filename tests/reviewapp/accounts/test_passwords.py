"""Password rules, and demo accounts that follow them."""

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command

from reviewapp.accounts.management.commands.create_demo_users import DEMO_USERS
from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "password",
    ["short-pw-1", "password1234", "123456789012345", "olivia-olivia"],
    ids=["too short", "common", "numeric", "like the name"],
)
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        validate_password(password, User(username="olivia-olivia"))


def test_the_standing_test_users_password_passes_the_rules():
    for name in ("olivia", "rémi", "wanda", "aldo"):
        validate_password(PASSWORD, User(username=name))


def test_demo_accounts_satisfy_the_rules_and_a_second_run_changes_nothing(settings, capsys):
    settings.DEBUG = True
    call_command("create_demo_users")
    before = AuditEvent.objects.count()

    call_command("create_demo_users")

    assert AuditEvent.objects.count() == before
    for username, password, _ in DEMO_USERS:
        assert User.objects.get(username=username).check_password(password)
    assert AuditEvent.objects.filter(action=actions.USER_CREATED).count() == len(DEMO_USERS)
