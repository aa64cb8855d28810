"""What is hashed, and with which key: the one definition the writer, the sealer and the
verifier share. Nothing here touches the database."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math

from django.conf import settings

GENESIS = "0" * 64


def _subkey(purpose: bytes) -> bytes:
    """A key per use, derived from AUDIT_KEY, so a MAC of one kind never passes as another."""
    return hmac.new(settings.AUDIT_KEY.encode(), purpose, hashlib.sha256).digest()


def key_id() -> str:
    """A fingerprint of AUDIT_KEY that says which key sealed a row without revealing it."""
    return _subkey(b"audit-key-id").hex()[:16]


def _mac(purpose: bytes, message: bytes) -> str:
    return hmac.new(_subkey(purpose), message, hashlib.sha256).hexdigest()


def _dumps(payload) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def _raw_content(event) -> dict:
    return {
        "created_at": event.created_at.isoformat(),
        "actor_ref": event.actor_ref,
        "actor_name": event.actor_name,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "workflow_slug": event.workflow_slug,
        "changes": event.changes,
        "request_id": event.request_id,
        "ip": event.ip,
    }


def _number(value):
    """A JSON number as every database gives it back: PostgreSQL's jsonb keeps numbers as
    `numeric`, which has no -0 and writes 2.5e16 as 25000000000000000 (an int once read)."""
    if isinstance(value, float):
        if value == 0:
            return 0.0
        if abs(value) >= 1e16 and value.is_integer():
            return int(value)
    return value


def _canonical(value):
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return _number(value)


def event_content(event) -> dict:
    """The fields of an event that its MAC covers (everything but ids and chain data), in
    a form that survives the database: the MAC computed before the insert is the one
    recomputed after a read, on SQLite and PostgreSQL alike."""
    content = _raw_content(event)
    content["changes"] = _canonical(event.changes)
    if event.ip:
        # PostgreSQL's inet writes some IPv6 addresses its own way (::1.2.3.4).
        content["ip"] = str(ipaddress.ip_address(event.ip))
    return content


def event_mac(event) -> str:
    return _mac(b"audit-event", _dumps(event_content(event)))


def seal_hash(seq: int, event_id: int, prev_hash: str, row_mac: str) -> str:
    return _mac(b"audit-seal", f"{seq}|{event_id}|{prev_hash}|{row_mac}".encode())


def legacy_hash(event) -> str:
    """The SHA-256 of the first epoch: the content plus the predecessor's hash, no key."""
    payload = {**_raw_content(event), "prev_hash": event.legacy_prev_hash}
    return hashlib.sha256(_dumps(payload)).hexdigest()


def checkpoint_mac(payload: dict) -> str:
    return _mac(b"audit-checkpoint", _dumps({k: v for k, v in payload.items() if k != "mac"}))


def _storable(value):
    if isinstance(value, str):
        # PostgreSQL text and jsonb refuse NUL and lone surrogates: shown, not dropped.
        if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
            value = "".join(
                "\u2400" if c == "\x00" else "\ufffd" if "\ud800" <= c <= "\udfff" else c
                for c in value
            )
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN or Infinity
    if isinstance(value, dict):
        return {_storable(str(k)): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def normalised(changes: dict) -> dict:
    """`changes` as JSON can hold it, whatever the database: tuples become lists, dates and
    other objects strings, NUL and lone surrogates visible replacements, NaN a string."""
    return _storable(json.loads(json.dumps(changes, default=str)))
