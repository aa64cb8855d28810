"""Counters in Redis that limit failed sign-ins and the audit rows refused requests write.

Sign-ins are counted per (account, client address) and per client address, so that one
address cannot lock every reviewer out: past the per-account limit only that account is
refused from that address, past the looser per-address limit the address is refused.

An attempt is counted *before* its password is checked, in one Lua script that also
refuses it when a limit is reached, so parallel requests cannot check more passwords than
the limit allows. A successful sign-in takes its attempt back.

Redis is shared by every web process; when it cannot be reached, sign-ins are refused
(the throttle fails closed) and refused requests are recorded without a limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

from reviewapp.lib.clientaddr import throttle_scope

log = logging.getLogger(__name__)

ACCOUNT = "account"
ADDRESS = "address"
UNAVAILABLE = "unavailable"

# KEYS: per-account counter, per-address counter. ARGV: their limits, the window (ms).
# Returns {0, scope, ms left} when refused, {1, account count, address count} when counted.
_RESERVE = """
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
if a >= tonumber(ARGV[1]) then return {0, 1, redis.call('PTTL', KEYS[1])} end
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
if b >= tonumber(ARGV[2]) then return {0, 2, redis.call('PTTL', KEYS[2])} end
a = redis.call('INCR', KEYS[1])
if a == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
b = redis.call('INCR', KEYS[2])
if b == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return {1, a, b}
"""

# A successful sign-in: the account's failures are forgiven, its attempt is taken back
# from the address (an office behind one address signs in all day).
_SUCCEED = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 1
"""

# KEYS: one counter. ARGV: the window (ms). Returns the count in this window.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused without looking at the password."""

    scope: str  # ACCOUNT, ADDRESS or UNAVAILABLE
    retry_after_s: int

    @property
    def message(self) -> str:
        if self.scope == UNAVAILABLE:
            return "Sign-in is unavailable for a moment; try again shortly."
        minutes = max(1, math.ceil(self.retry_after_s / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.scope == ACCOUNT:
            return (
                f"Too many failed sign-ins for this account from your address; try again in {wait}."
            )
        return f"Too many failed sign-ins from your address; try again in {wait}."


@dataclass(frozen=True)
class Attempt:
    """A counted sign-in attempt, waiting for the password check's verdict."""

    account_key: str
    address_key: str
    noted_key: str
    account_count: int
    address_count: int


@dataclass(frozen=True)
class Failure:
    """What a failed attempt started: its window's first failure, and/or a lockout."""

    first_in_window: bool
    locked: tuple[str, ...]  # ACCOUNT and/or ADDRESS, each once per lockout


class _Redis:
    """A client and the scripts (sent once, then called by their hash)."""

    def __init__(self, url: str):
        # Short timeouts: a sign-in page must answer even when Redis does not.
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.reserve = self.client.register_script(_RESERVE)
        self.succeed = self.client.register_script(_SUCCEED)
        self.count = self.client.register_script(_COUNT)


@lru_cache(maxsize=4)
def _redis(url: str) -> _Redis:
    return _Redis(url)


def _key(*parts: str) -> str:
    return settings.THROTTLE_KEY_PREFIX + ":".join(parts)


def _account_ref(username: str) -> str:
    # Hashed: a key holds no name, and any name (long, odd characters) makes a valid key.
    # Case-folded: "Olivia" and "olivia" share a budget.
    return hashlib.sha256(username.casefold().encode()).hexdigest()[:32]


def reserve_login_attempt(username: str, address: str) -> Attempt | Refusal:
    """Count one sign-in attempt, or refuse it when either limit is reached."""
    scope = throttle_scope(address)
    account_key = _key("login", "account", _account_ref(username), scope)
    address_key = _key("login", "address", scope)
    window_ms = settings.LOGIN_FAILURE_WINDOW_S * 1000
    try:
        counted, first, second = _redis(settings.REDIS_URL).reserve(
            keys=[account_key, address_key],
            args=[
                settings.LOGIN_FAILURES_PER_ACCOUNT,
                settings.LOGIN_FAILURES_PER_ADDRESS,
                window_ms,
            ],
        )
    except redis.RedisError:
        log.exception("sign-in throttle: Redis unreachable; refusing sign-ins")
        return Refusal(UNAVAILABLE, 0)
    if not counted:
        left_ms = second if second > 0 else window_ms
        return Refusal(ACCOUNT if first == 1 else ADDRESS, math.ceil(left_ms / 1000))
    return Attempt(
        account_key=account_key,
        address_key=address_key,
        noted_key=_key("login", "noted", _account_ref(username), scope),
        account_count=first,
        address_count=second,
    )


def settle_failed_login(attempt: Attempt) -> Failure:
    """The password was wrong (or the account unknown or inactive)."""
    window_ms = settings.LOGIN_FAILURE_WINDOW_S * 1000
    locked = []
    first = True
    try:
        with _redis(settings.REDIS_URL).client.pipeline(transaction=False) as pipe:
            # One audit row per (account, address) per window, however many failures.
            pipe.set(attempt.noted_key, 1, nx=True, px=window_ms)
            if attempt.account_count == settings.LOGIN_FAILURES_PER_ACCOUNT:
                # Only one attempt can hold the last count: the lockout starts once,
                # and lasts a whole window from now.
                pipe.pexpire(attempt.account_key, window_ms)
                locked.append(ACCOUNT)
            if attempt.address_count == settings.LOGIN_FAILURES_PER_ADDRESS:
                pipe.pexpire(attempt.address_key, window_ms)
                locked.append(ADDRESS)
            first = bool(pipe.execute()[0])
    except redis.RedisError:
        log.exception("sign-in throttle: Redis unreachable while counting a failure")
    return Failure(first_in_window=first, locked=tuple(locked))


def settle_successful_login(attempt: Attempt) -> None:
    try:
        _redis(settings.REDIS_URL).succeed(keys=[attempt.account_key, attempt.address_key])
    except redis.RedisError:
        log.exception("sign-in throttle: Redis unreachable while clearing a success")


def count_denial(who: str) -> int | None:
    """Count one refused request of `who` in the current window; None when Redis is down."""
    try:
        count = _redis(settings.REDIS_URL).count
        return int(count(keys=[_key("denied", who)], args=[settings.DENIAL_AUDIT_WINDOW_S * 1000]))
    except redis.RedisError:
        log.exception("denial throttle: Redis unreachable; recording every refusal")
        return None
