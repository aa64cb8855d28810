"""The sign-in forms of the app and of Django admin, saying when the throttle refused."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from reviewapp.accounts.backends import login_refusal

THROTTLED = "throttled"


class ThrottleMessageMixin:
    def get_invalid_login_error(self):
        refusal = login_refusal(self.request) if self.request is not None else None
        if refusal is not None:
            return ValidationError(refusal.message, code=THROTTLED)
        return super().get_invalid_login_error()


class SignInForm(ThrottleMessageMixin, AuthenticationForm):
    pass


class AdminSignInForm(ThrottleMessageMixin, AdminAuthenticationForm):
    pass
