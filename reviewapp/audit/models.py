"""The audit trail: append-only and hash-chained, so an edit or a deletion shows."""

import hashlib
import json

from django.conf import settings
from django.db import models


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("audit events are append-only")

    def delete(self):
        raise TypeError("audit events are append-only")


class AuditEvent(models.Model):
    """One state change: who did what to which object, and what changed.

    Each row stores the hash of the previous row and its own hash over its canonical
    JSON, so `manage.py verify_audit` finds the first row that was edited or removed.
    The actor's name is snapshotted so the history survives the user's deletion.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    # Snapshots of the actor, hashed with the row: the foreign key above may become
    # NULL when the user is deleted, these never change.
    actor_ref = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    # Lets the audit page filter by workflow without joining through every target type.
    workflow_slug = models.CharField(max_length=100, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The audit page's "events about this object" lookups.
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit events are append-only")

    def canonical(self) -> bytes:
        payload = {
            "created_at": self.created_at.isoformat(),
            "actor_ref": self.actor_ref,
            "actor_name": self.actor_name,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "workflow_slug": self.workflow_slug,
            "changes": self.changes,
            "request_id": self.request_id,
            "ip": self.ip,
            "prev_hash": self.prev_hash,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


class AuditChain(models.Model):
    """A single row holding the hash of the newest event.

    Locking it (select_for_update) serialises appends across processes on every
    database, so two writers never chain onto the same predecessor.
    """

    last_hash = models.CharField(max_length=64)

    def __str__(self):
        return self.last_hash
