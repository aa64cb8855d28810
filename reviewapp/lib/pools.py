"""Pools: a pool is a named set of ComfyUI backends and the one RQ queue of the same name.

Configured in one place, the environment, read once by settings.py through
`pools_from_env`:

    COMFYUI_POOLS="sdxl=http://gpu1:8188,http://gpu2:8188;cpu=http://cpu1:8188"

or, for one pool named "default", the older shorthand COMFYUI_URL="http://a:8188,http://b:8188".
The first pool is the default one (new workflows land there). Everything else reads
`settings.COMFYUI_POOLS` through the helpers at the bottom, so a test that overrides the
setting changes every reader at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# A pool's name is also its RQ queue's name and a Workflow.pool value (64 characters).
NAME_RE = re.compile(r"[a-z0-9_-]{1,64}")
DEFAULT_URL = "http://127.0.0.1:8188"
DEFAULT_POOL = "default"

Pools = dict[str, tuple[str, ...]]


class UnknownPool(LookupError):
    """A pool name that is not configured (a stale workflow row, a typo in a file)."""


def shown_url(url: str) -> str:
    """The URL as an error message may show it: a password in it is hidden."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def _same_backend(url: str) -> str:
    # http://gpu1:8188 and http://gpu1:8188/ are one backend.
    return url.rstrip("/")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a backend's base URL, or None."""
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # a bad port raises here, not in urlsplit
    except ValueError as exc:
        return f"URL {shown_url(url)!r} cannot be parsed ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return f"URL {shown_url(url)!r} must be http:// or https:// with a host"
    return None


def pool_problems(pools: Mapping) -> list[str]:
    """Every rule a pool configuration breaks, whatever its origin (the environment, or a
    settings module that sets COMFYUI_POOLS itself). A pool without a backend is not one of
    them: it is legal, if useless, and the system check warns about it."""
    if not isinstance(pools, Mapping) or not pools:
        return ["no pool is configured"]
    problems = []
    owner: dict[str, str] = {}
    for name, urls in pools.items():
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            problems.append(
                f"pool name {name!r} must be 1 to 64 lowercase letters, digits, '_' or '-'"
            )
            continue
        if isinstance(urls, str) or not isinstance(urls, (list, tuple)):
            problems.append(f"pool {name!r}: its backends must be a tuple of URLs")
            continue
        for url in urls:
            problem = url_problem(url) if isinstance(url, str) else f"URL {url!r} is not text"
            if problem:
                problems.append(f"pool {name!r}: {problem}")
                continue
            key = _same_backend(url)
            if key in owner:
                where = "listed twice" if owner[key] == name else f"already in pool {owner[key]!r}"
                problems.append(f"pool {name!r}: URL {shown_url(url)!r} is {where}")
            owner.setdefault(key, name)
    return problems


def _split_urls(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_pools(text: str) -> Pools:
    """Parse ``name=url,url;name=url``. Raises ValueError naming the first bad part.

    Pure: the result is a dict in the order written, each pool a tuple of URLs.
    """
    pools: Pools = {}
    for part in (part.strip() for part in text.split(";")):
        if not part:
            continue  # a trailing or doubled ';'
        name, equals, urls_text = part.partition("=")
        name = name.strip()
        if not equals:
            raise ValueError(f"{shown_url(part)!r} is not NAME=URL[,URL...]")
        if not name:
            raise ValueError(f"{shown_url(part)!r}: the pool has no name before '='")
        if not NAME_RE.fullmatch(name):
            raise ValueError(
                f"pool name {name!r} must be 1 to 64 lowercase letters, digits, '_' or '-'"
            )
        if name in pools:
            raise ValueError(f"pool {name!r} is defined twice")
        urls = _split_urls(urls_text)
        if not urls:
            raise ValueError(f"pool {name!r} has no URL")
        pools[name] = urls
        problems = pool_problems(pools)
        if problems:
            raise ValueError(problems[0])
    if not pools:
        raise ValueError("no pool is defined (expected NAME=URL[,URL...];NAME=URL...)")
    return pools


def pools_from_env(environ: Mapping[str, str]) -> Pools:
    """The pools settings.py uses: COMFYUI_POOLS when set, else one pool "default" of the
    COMFYUI_URL backends (the local default URL when that is unset too).

    Raises ImproperlyConfigured with the parser's words, so a bad value stops the process
    at start instead of at the first generation. When both variables are set COMFYUI_POOLS
    wins; the system check warns (reviewapp.W011) that COMFYUI_URL is ignored.
    """
    text = environ.get("COMFYUI_POOLS", "")
    if text.strip():
        try:
            return parse_pools(text)
        except ValueError as exc:
            raise ImproperlyConfigured(f"COMFYUI_POOLS: {exc}") from None
    pools = {DEFAULT_POOL: _split_urls(environ.get("COMFYUI_URL", DEFAULT_URL))}
    problems = pool_problems(pools)
    if problems:
        raise ImproperlyConfigured(f"COMFYUI_URL: {problems[0]}")
    return pools


def rq_queues(pools: Mapping[str, tuple[str, ...]], redis_url: str, default_timeout: int) -> dict:
    """RQ_QUEUES for django-rq: one queue per pool, of the pool's name, all on one Redis."""
    return {pool: {"URL": redis_url, "DEFAULT_TIMEOUT": default_timeout} for pool in pools}


def env_shadowed(environ: Mapping[str, str]) -> bool:
    """Both variables are set: COMFYUI_URL is ignored, which its author may not expect."""
    return bool(environ.get("COMFYUI_POOLS", "").strip() and environ.get("COMFYUI_URL", "").strip())


# -- readers of the settings ---------------------------------------------------------------


def _configured() -> Mapping[str, tuple[str, ...]]:
    # Read at each call (settings.py imports this module; tests override the setting).
    return settings.COMFYUI_POOLS


def pool_names() -> list[str]:
    """The configured pools, the default one first."""
    return list(_configured())


def default_pool() -> str:
    """The first configured pool: where a workflow goes when nothing names one. Also the
    default of Workflow.pool (a callable, so the migration does not freeze today's name)."""
    for name in _configured():
        return name
    raise UnknownPool("no pool is configured (COMFYUI_POOLS is empty)")


def unknown_pool_message(name: object) -> str:
    """One wording for every place that refuses a pool name."""
    names = ", ".join(pool_names()) or "none"
    return f"pool {name!r} is not configured; the configured pools are: {names}"


def backends_of(pool: str) -> tuple[str, ...]:
    """The base URLs of the pool's backends. Raises UnknownPool."""
    try:
        return tuple(_configured()[pool])
    except KeyError:
        raise UnknownPool(unknown_pool_message(pool)) from None
