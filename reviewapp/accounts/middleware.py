from django.core.exceptions import PermissionDenied

from reviewapp.accounts import services


class DeniedAccessAuditMiddleware:
    """Audits every request a view refused with PermissionDenied: the `require` decorator's,
    a view's own, Django admin's. The one place, so no view can forget."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            services.record_denied_access(request)
        # Django still turns the exception into its 403 page.
        return None
