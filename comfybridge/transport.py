"""The HTTP session of one backend, and how its replies become comfybridge errors.

One rule for every route, so that callers can trust ``retryable``: a network failure or a 5xx
is ``ComfyUnavailable`` (temporary), a 401/407 is ``AuthRejected`` (the same headers will be
refused again), a 200 that is not JSON is ``ComfyUnavailable`` (a proxy's error page, a
backend half up), any other status is a plain ``ComfyError``.

``POST /prompt`` is the exception: its failures are ambiguous (the prompt may have been
queued), so ``ComfyClient.submit`` sends it through ``session`` and decides itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from .auth import auth_rejection
from .errors import ComfyError, ComfyUnavailable


class Transport:
    """``requests`` with the backend's headers and TLS settings, and our error rules."""

    def __init__(
        self, base_url: str, *, headers: Mapping[str, str], verify: bool | str, timeout: float
    ):
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.session.verify = verify
        # Proxy settings from the environment, read once: requests would read them again
        # on every call, which costs more than a request to a local backend.
        self.session.proxies = requests.utils.get_environ_proxies(base_url)
        self.session.trust_env = False

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """The response of any status below 500 other than 401/407."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.url(path), **kwargs)
        except requests.RequestException as exc:
            raise ComfyUnavailable(f"{method} {path}: {exc}") from exc
        if response.status_code >= 500:
            raise ComfyUnavailable(f"{method} {path}: HTTP {response.status_code}")
        self.refuse_auth_failure(method, path, response.status_code)
        return response

    def refuse_auth_failure(self, method: str, path: str, status: int) -> None:
        rejection = auth_rejection(status, f"{method} {path} on {self.base_url}")
        if rejection is not None:
            raise rejection

    def json(self, method: str, path: str, **kwargs) -> Any:
        """The JSON of a 200 reply."""
        response = self.request(method, path, **kwargs)
        if response.status_code != 200:
            raise ComfyError(f"{method} {path}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ComfyUnavailable(f"{method} {path}: reply is not JSON") from exc


def never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was refused: the request certainly never arrived."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text
