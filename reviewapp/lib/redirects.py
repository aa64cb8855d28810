"""Where to go back to after a POST: only ever a page of this site."""

from __future__ import annotations

import unicodedata

from django.utils.http import url_has_allowed_host_and_scheme


def safe_back(request, field: str = "back") -> str:
    """`request.GET[field]` when it is a URL of this site (a page that links here and
    wants the reader back, as the campaign matrix does), else ""."""
    target = request.GET.get(field, "")
    if not target or any(unicodedata.category(c)[0] == "C" for c in target):
        return ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def safe_return_to(request, default: str, field: str = "return_to") -> str:
    """`request.POST[field]` when it is a URL of this site, else `default`. Answer it with
    HttpResponseRedirect, not redirect(): the latter would try a bare word as a view name.

    Without this check a link to a form with return_to=https://evil.example/ would send
    a logged-in user on to any site after a real action here (an open redirect).
    """
    target = request.POST.get(field, "")
    if not target or any(unicodedata.category(c)[0] == "C" for c in target):
        return default
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default
