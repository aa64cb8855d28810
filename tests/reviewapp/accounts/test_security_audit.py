"""Security events in the audit trail: sign-in and sign-out, refused requests, and changes
to accounts whatever made them (Django admin, a shell)."""

import json

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.urls import reverse

from reviewapp.accounts import roles
from reviewapp.audit import actions
from reviewapp.audit.models import AuditEvent
from tests.conftest import PASSWORD, make_user
from tests.reviewapp.factories import awaiting_generation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def throttle_redis(settings, redis_url):
    settings.REDIS_URL = redis_url


@pytest.fixture
def root(db):
    user = make_user("root")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


class QuickPBKDF2Hasher(PBKDF2PasswordHasher):
    iterations = 1


def rows(action, target=None):
    events = AuditEvent.objects.filter(action=action).order_by("id")
    if target is not None:
        events = events.filter(target_id=str(target.pk))
    return list(events)


def test_a_sign_in_and_a_sign_out_are_audited(client, operator):
    client.post(reverse("login"), {"username": operator.username, "password": PASSWORD})
    client.post(reverse("logout"))

    (login,) = rows(actions.LOGIN_SUCCEEDED)
    (logout,) = rows(actions.LOGGED_OUT)
    assert (login.actor_name, login.target_id) == ("olivia", str(operator.pk))
    assert logout.actor_name == "olivia"


def test_a_refused_request_is_audited_with_its_path_and_method(client, reviewer):
    client.force_login(reviewer)

    assert client.get(reverse("audit_list")).status_code == 403

    (denied,) = rows(actions.ACCESS_DENIED)
    assert denied.actor_name == "rémi"
    assert denied.changes == {"path": "/audit/", "method": "GET"}


def test_a_refusal_inside_a_login_only_view_is_audited(client, operator, auditor, workflows):
    generation = awaiting_generation(operator)
    client.force_login(auditor)
    url = reverse("generation_regenerate_edit", args=[generation.pk])

    assert client.post(url).status_code == 403

    (denied,) = rows(actions.ACCESS_DENIED)
    assert denied.changes == {"path": url, "method": "POST"}


def test_a_refusal_in_django_admin_is_audited(client):
    staff = make_user("staff")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)

    assert client.get("/admin/auth/user/").status_code == 403

    assert [row.changes["path"] for row in rows(actions.ACCESS_DENIED)] == ["/admin/auth/user/"]


def test_a_loop_of_refusals_writes_a_bounded_number_of_rows(client, reviewer, settings):
    settings.DENIAL_AUDIT_LIMIT = 3
    client.force_login(reviewer)

    for _ in range(50):
        assert client.get(reverse("audit_list")).status_code == 403

    assert len(rows(actions.ACCESS_DENIED)) == 3
    (throttled,) = rows(actions.ACCESS_DENIED_THROTTLED)
    assert throttled.changes["limit"] == 3


def test_admin_changes_to_flags_and_roles_are_audited_with_the_admin_as_actor(client, root):
    user = make_user("newbie", roles.OPERATOR)
    reviewer_group = Group.objects.get(name=roles.REVIEWER)
    client.force_login(root)

    response = client.post(
        reverse("admin:auth_user_change", args=[user.pk]),
        {
            "username": "newbie",
            "is_active": "on",
            "is_staff": "on",
            "groups": [reviewer_group.pk],
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    (changed,) = rows(actions.USER_CHANGED, user)
    assert changed.actor_name == "root"
    assert changed.changes == {"is_staff": [False, True]}
    memberships = [(r.actor_name, r.changes) for r in rows(actions.USER_ROLES_CHANGED)]
    assert ("root", {"removed": ["operator"]}) in memberships
    assert ("root", {"added": ["reviewer"]}) in memberships


def test_a_password_change_is_audited_without_the_hash(client, root):
    user = make_user("newbie")
    client.force_login(root)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": "a-much-longer-pass", "password2": "a-much-longer-pass"},
    )

    assert response.status_code == 302
    (changed,) = rows(actions.USER_CHANGED, user)
    assert changed.changes == {"password": "changed"}
    user.refresh_from_db()
    trail = json.dumps(list(AuditEvent.objects.values_list("changes", flat=True)))
    assert user.password not in trail and "md5$" not in trail


def test_changes_from_a_shell_are_audited_as_the_system():
    user = make_user("newbie")
    user.is_superuser = True
    user.set_unusable_password()
    user.save()

    (changed,) = rows(actions.USER_CHANGED)
    assert changed.actor_name == "system"
    assert changed.changes == {"is_superuser": [False, True], "password": "disabled"}


def test_creating_and_deleting_a_user_are_audited():
    user = User.objects.create_user("temp", password=PASSWORD, is_staff=True)
    pk = user.pk
    user.delete()

    (created,) = rows(actions.USER_CREATED)
    assert created.changes["username"] == "temp" and created.changes["is_staff"] is True
    assert "password" not in created.changes
    (deleted,) = rows(actions.USER_DELETED)
    assert (deleted.target_id, deleted.changes) == (str(pk), {"username": "temp"})


def test_a_sign_in_that_only_upgrades_the_password_hash_is_not_a_change(settings):
    user = make_user("newbie")  # hashed with MD5, the tests' hasher
    settings.PASSWORD_HASHERS = [
        f"{__name__}.QuickPBKDF2Hasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert user.check_password(PASSWORD)

    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")
    assert rows(actions.USER_CHANGED) == []


def test_a_last_login_update_is_not_a_change(client, operator):
    client.post(reverse("login"), {"username": operator.username, "password": PASSWORD})

    assert rows(actions.USER_CHANGED) == []


def test_membership_changes_from_the_group_side_are_audited_per_user():
    alice, bob = make_user("alice"), make_user("bob")
    auditors = Group.objects.get(name=roles.AUDITOR)

    auditors.user_set.add(alice, bob)
    auditors.user_set.remove(alice)
    alice.groups.remove(auditors)  # no longer a member: nothing to record
    auditors.user_set.clear()

    changes = [(r.target_id, r.changes) for r in rows(actions.USER_ROLES_CHANGED)]
    assert changes == [
        (str(alice.pk), {"added": ["auditor"]}),
        (str(bob.pk), {"added": ["auditor"]}),
        (str(alice.pk), {"removed": ["auditor"]}),
        (str(bob.pk), {"removed": ["auditor"]}),
    ]


def test_a_permission_granted_to_a_user_is_audited():
    from django.contrib.auth.models import Permission

    user = make_user("newbie")
    user.user_permissions.add(Permission.objects.get(codename="change_user"))

    (granted,) = rows(actions.USER_PERMISSIONS_CHANGED)
    assert granted.changes == {
        "added": ["Authentication and Authorization | user | Can change user"]
    }


def test_deleting_a_role_group_records_who_lost_it():
    make_user("alice", roles.AUDITOR)

    Group.objects.get(name=roles.AUDITOR).delete()

    (deleted,) = rows(actions.GROUP_DELETED)
    assert deleted.changes == {"name": "auditor", "members": ["alice"]}
