import uuid

from reviewapp.audit.context import reset_request_context, set_request_context


class RequestContextMiddleware:
    """Gives every request an id (X-Request-ID when a proxy set one) for the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex
        token = set_request_context(
            {"request_id": request_id, "ip": request.META.get("REMOTE_ADDR")}
        )
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(token)
        response["X-Request-ID"] = request_id
        return response
