"""View helpers that turn a failed permission check into the right HTTP answer."""

from functools import wraps

from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from reviewapp.accounts.backends import login_refusal
from reviewapp.accounts.forms import SignInForm


def require(predicate):
    """Decorator: the user must be logged in and `predicate(user)` must hold, else 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not predicate(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.permission_rule = predicate.__name__
        return wrapper

    return decorator


def login_only(view):
    """Any logged-in user; the view narrows what it shows with .visible_to()."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapper.permission_rule = "authenticated"
    return wrapper


class SignInView(auth_views.LoginView):
    """Django's login view; a sign-in the throttle refused answers 429 with Retry-After."""

    authentication_form = SignInForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        refusal = login_refusal(self.request)
        if refusal is not None:
            response.status_code = 429
            if refusal.retry_after_s:
                response["Retry-After"] = str(refusal.retry_after_s)
        return response
