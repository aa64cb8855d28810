"""Audit rows for security events: sign-ins, lockouts, refused requests."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model

from reviewapp.accounts import throttle
from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.lib.clientaddr import client_address

# Longest path kept in a denial row: enough to tell what was asked for.
PATH_MAX = 500


def record_failed_login(username: str, *, address: str, failure: throttle.Failure) -> None:
    """The first failure per (account, address) per window gets a row, and each lockout one;
    the failures in between are counted in the lockout row, not written."""
    if not failure.first_in_window and not failure.locked:
        return
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
    name = username[:150]
    if failure.first_in_window:
        record(
            actions.LOGIN_FAILED,
            actor=None,
            target=user,
            changes={"username": name, "client": address},
        )
    for scope in failure.locked:
        limit = (
            settings.LOGIN_FAILURES_PER_ACCOUNT
            if scope == throttle.ACCOUNT
            else settings.LOGIN_FAILURES_PER_ADDRESS
        )
        record(
            actions.LOGIN_LOCKED_OUT,
            actor=None,
            target=user if scope == throttle.ACCOUNT else None,
            changes={
                "scope": scope,
                "username": name,
                "client": address,
                "failures": limit,
                "window_s": settings.LOGIN_FAILURE_WINDOW_S,
                "locked_for_s": settings.LOGIN_FAILURE_WINDOW_S,
            },
        )


def record_login(user) -> None:
    record(actions.LOGIN_SUCCEEDED, actor=user, target=user)


def record_logout(user) -> None:
    record(actions.LOGGED_OUT, actor=user, target=user)


def record_denied_access(request) -> None:
    """One row per refused request, up to DENIAL_AUDIT_LIMIT per user (or address) per
    window; the next one says recording stops, and the rest of the window writes nothing."""
    user = request.user if request.user.is_authenticated else None
    who = f"user:{user.pk}" if user else f"address:{client_address(request)}"
    count = throttle.count_denial(who)
    where = {"path": request.path[:PATH_MAX], "method": request.method}
    if count is None or count <= settings.DENIAL_AUDIT_LIMIT:
        record(actions.ACCESS_DENIED, actor=user, target=None, changes=where)
    elif count == settings.DENIAL_AUDIT_LIMIT + 1:
        record(
            actions.ACCESS_DENIED_THROTTLED,
            actor=user,
            target=None,
            changes={
                **where,
                "limit": settings.DENIAL_AUDIT_LIMIT,
                "window_s": settings.DENIAL_AUDIT_WINDOW_S,
            },
        )
