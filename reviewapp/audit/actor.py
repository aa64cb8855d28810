"""Who acts in the current request, for audit rows written by signal handlers
(a model saved from Django admin, a shell, a management command)."""

from reviewapp.audit.context import (
    current_request_context,
    reset_request_context,
    set_request_context,
)


def current_actor():
    """The signed-in user of the current request, or None (the system: a shell, a command,
    a worker)."""
    request = current_request_context().get("request")
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class ActorContextMiddleware:
    """Adds the request to the audit request context. The user is read when a row is
    written, not now, so a sign-in or sign-out within the request is seen."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = set_request_context({**current_request_context(), "request": request})
        try:
            return self.get_response(request)
        finally:
            reset_request_context(token)
