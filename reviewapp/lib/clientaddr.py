"""The client's network address, as far as this server can trust it."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """REMOTE_ADDR; behind a proxy (DJANGO_BEHIND_PROXY), the address the proxy saw.

    The proxy appends the address it saw to X-Forwarded-For, so only the last entry is
    its word: the ones before it came from the client and may be anything.
    """
    remote = request.META.get("REMOTE_ADDR") or ""
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        if _is_address(forwarded):
            return forwarded
    return remote if _is_address(remote) else "unknown"


def throttle_scope(address: str) -> str:
    """The unit a throttle counts per: one IPv4 address, or one IPv6 /64 (a single
    subscriber usually holds a whole /64, so counting single IPv6 addresses counts nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
