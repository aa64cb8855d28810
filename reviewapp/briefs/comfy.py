"""The one place that builds comfybridge objects from Django settings."""

from __future__ import annotations

import random

from django.conf import settings

from comfybridge.client import ComfyClient


def backend_urls() -> list[str]:
    return list(settings.COMFYUI_URLS)


def choose_backend() -> str:
    # Pools with health and queue depth come with the backend pool; until then
    # spread runs at random over the configured backends.
    return random.choice(backend_urls())


def client_for(url: str) -> ComfyClient:
    return ComfyClient(url, timeout=settings.COMFYUI_TIMEOUT)
