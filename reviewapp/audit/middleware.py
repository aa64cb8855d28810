import re
import uuid

from reviewapp.audit.context import reset_request_context, set_request_context
from reviewapp.lib.clientaddr import client_address

# What a proxy's request id looks like (a UUID, hex, a dotted trace id). Anything else is
# replaced, not cut: the id goes into the audit trail and its CSV export verbatim.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when well formed, else a new one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives every request an id (X-Request-ID when a proxy set one) for the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get("X-Request-ID"))
        address = client_address(request)
        token = set_request_context(
            {"request_id": request_id, "ip": None if address == "unknown" else address}
        )
        try:
            response = self.get_response(request)
        finally:
            reset_request_context(token)
        response["X-Request-ID"] = request_id
        return response
