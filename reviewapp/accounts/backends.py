"""Django's model backend behind the sign-in throttle.

Every authenticate() call with a request goes through here: the app's login page and
Django admin's alike. A call without a request (a script, the test client's login())
has no client address to count and is not throttled.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from reviewapp.accounts import services, throttle
from reviewapp.lib.clientaddr import client_address


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if request is None or username is None or password is None:
            return super().authenticate(request, username, password, **kwargs)
        address = client_address(request)
        attempt = throttle.reserve_login_attempt(username, address)
        if isinstance(attempt, throttle.Refusal):
            # The login form shows why; raising (not returning None) stops authenticate()
            # before any other backend, so the password is never checked.
            request.login_refusal = attempt
            raise PermissionDenied(attempt.message)
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            failure = throttle.settle_failed_login(attempt)
            services.record_failed_login(username, address=address, failure=failure)
        else:
            throttle.settle_successful_login(attempt)
        return user


def login_refusal(request) -> throttle.Refusal | None:
    """Why the throttle refused this request's sign-in, if it did."""
    return request.__dict__.get("login_refusal")
