"""Request id and client address of the current request, for audit rows."""

import contextvars

_ctx: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "audit_request_context", default=None
)


def current_request_context() -> dict:
    return _ctx.get() or {}


def set_request_context(values: dict):
    return _ctx.set(values)


def reset_request_context(token) -> None:
    _ctx.reset(token)
