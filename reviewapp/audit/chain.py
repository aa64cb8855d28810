"""What is hashed, and with which key: the one definition the writer, the sealer and the
verifier share. Nothing here touches the database."""

from __future__ import annotations

import hashlib
import hmac
import json

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


def event_content(event) -> dict:
    """The fields of an event that its MAC covers (everything but ids and chain data)."""
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


def event_mac(event) -> str:
    return _mac(b"audit-event", _dumps(event_content(event)))


def seal_hash(seq: int, event_id: int, prev_hash: str, row_mac: str) -> str:
    return _mac(b"audit-seal", f"{seq}|{event_id}|{prev_hash}|{row_mac}".encode())


def legacy_hash(event) -> str:
    """The SHA-256 of the first epoch: the content plus the predecessor's hash, no key."""
    payload = {**event_content(event), "prev_hash": event.legacy_prev_hash}
    return hashlib.sha256(_dumps(payload)).hexdigest()


def checkpoint_mac(payload: dict) -> str:
    return _mac(b"audit-checkpoint", _dumps({k: v for k, v in payload.items() if k != "mac"}))


def normalised(changes: dict) -> dict:
    """`changes` as the database gives it back, so the MAC computed before the insert is
    the one recomputed after a read (tuples become lists, dates strings...)."""
    return json.loads(json.dumps(changes, default=str))
