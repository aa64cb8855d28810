"""Credentials for a backend behind an authenticating proxy, and the error a refusal raises.

A ComfyUI backend has no authentication of its own; a proxy in front of it may want a bearer
token or HTTP basic auth. The same headers go on every HTTP request and on the websocket
upgrade. Credentials written in a URL (``http://user:pass@host``) are turned into a basic-auth
header and removed from the URL, so they never reach logs or stored backend names.

A 401 or 407 is reported the same way wherever it comes from (a request, the upgrade), naming
the route and the backend, as ``AuthRejected``: not retryable, since the same headers will be
refused again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ComfyError

# Status codes meaning "who are you?": the backend's or a proxy's (407) authentication.
AUTH_STATUSES = {401: "Unauthorized", 407: "Proxy Authentication Required"}


class AuthRejected(ComfyError):
    """The backend, or a proxy in front of it, refused our credentials (HTTP 401 or 407).

    Not retryable: the same headers will be refused again. Fix the token or password.
    """


def auth_rejection(status: int | None, where: str) -> AuthRejected | None:
    """The ``AuthRejected`` to raise when ``status`` is 401/407, else None.

    ``where`` names the route and the backend (``"GET /prompt on http://host"``), so the
    message says which credentials to fix. Returned rather than raised, so a caller handling
    another exception can chain it (``raise error from exc``).
    """
    if status not in AUTH_STATUSES:
        return None
    return AuthRejected(
        f"{where}: HTTP {status} {AUTH_STATUSES[status]}: "
        "the backend or a proxy in front of it refused our credentials "
        "(check the token, the password in the URL, or the headers)"
    )


def bearer_auth(token: str) -> dict[str, str]:
    """Headers for a proxy that wants a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def basic_auth(user: str, password: str) -> dict[str, str]:
    """Headers for a proxy that wants HTTP basic authentication."""
    raw = f"{user}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """``http://user:pass@host:port/p`` -> (``http://host:port/p``, basic-auth headers).

    A URL without credentials comes back unchanged (less a trailing slash) with no headers.
    """
    parts = urlsplit(url.strip().rstrip("/"))
    if "@" not in parts.netloc:
        return urlunsplit(parts), {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, basic_auth(unquote(user), unquote(password))


def merge_headers(url: str, headers: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
    """The URL without credentials, and ``headers`` plus the basic auth taken from it.

    Raises ``ValueError`` when both carry credentials: which one the proxy wants is a guess.
    """
    bare, url_headers = split_credentials(url)
    merged = dict(headers or {})
    if url_headers and any(k.lower() == "authorization" for k in merged):
        raise ValueError("credentials are in both the URL and the Authorization header")
    merged.update(url_headers)
    return bare, merged
