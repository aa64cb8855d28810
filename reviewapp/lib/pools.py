"""Placeholder until the pool configuration lands: one pool, "default", of COMFYUI_URLS."""

from django.conf import settings


def pool_names() -> list[str]:
    return list(getattr(settings, "COMFYUI_POOLS", {"default": ()}))


def default_pool() -> str:
    return pool_names()[0]


def backends_of(pool: str) -> tuple[str, ...]:
    pools = getattr(settings, "COMFYUI_POOLS", None) or {"default": tuple(settings.COMFYUI_URLS)}
    return tuple(pools[pool])
