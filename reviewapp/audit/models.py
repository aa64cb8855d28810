"""The audit trail: events that are only ever inserted, and the seals that chain them.

Writers insert `AuditEvent` rows and touch nothing shared, so appending never waits on
another writer. Each row carries a MAC of its own content, keyed by AUDIT_KEY (a secret
the database does not hold). One sealer at a time (`reviewapp.audit.sealer`) gives the
committed events a sequence number in commit order and an HMAC chain in `AuditSeal`.
`manage.py verify_audit` recomputes both; signed checkpoints kept outside the database
show what the newest sealed rows were.
"""

from django.conf import settings
from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("the audit trail is append-only")

    def delete(self):
        raise TypeError("the audit trail is append-only")


class AppendOnlyModel(models.Model):
    """Refuses updates and deletes through the ORM (PostgreSQL triggers refuse them too)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("the audit trail is append-only")


class AuditEvent(AppendOnlyModel):
    """One state change or security event: who did what to which object, what changed.

    The actor's name is snapshotted so the history survives the user's deletion.
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    # Snapshots of the actor, covered by the MAC: the foreign key above may become
    # NULL when the user is deleted, these never change.
    actor_ref = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    # Lets the audit page filter by workflow without joining through every target type.
    workflow_slug = models.CharField(max_length=100, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # HMAC of the content above (chain.event_mac); empty on rows of the SHA-256 epoch.
    row_mac = models.CharField(max_length=64, blank=True)
    # The inserting transaction's id, set by a PostgreSQL trigger whatever the client
    # sends: the sealer orders by it. NULL on SQLite (one writer at a time: id order
    # is commit order there) and on rows of the SHA-256 epoch.
    txid = models.BigIntegerField(null=True, blank=True, editable=False)
    # The chain of the first epoch (plain SHA-256, written inline by each writer). Kept
    # so those rows stay verifiable; empty on rows written since.
    legacy_prev_hash = models.CharField(max_length=64, blank=True)
    legacy_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The audit page's "events about this object" lookups.
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            # The sealer's "committed and not yet sealed, in commit order" scan.
            models.Index(fields=["txid", "id"], name="audit_txid_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"


class AuditSeal(AppendOnlyModel):
    """An event's place in the chain: its sequence number and the chain's hash there.

    Epoch 0 rows carry the SHA-256 chain the trail started with; epoch 1 rows an HMAC
    over (sequence, event id, previous hash, event MAC) keyed by AUDIT_KEY, so nobody
    without the key can rewrite the chain after an edit or a deletion.
    """

    class Epoch(models.IntegerChoices):
        SHA256 = 0, "SHA-256 chain"
        HMAC = 1, "HMAC chain"

    seq = models.BigIntegerField(primary_key=True)
    # No database constraint: checking it would lock every sealed event row (FOR KEY
    # SHARE), which costs the writers; verify_audit finds a seal without its event.
    event = models.OneToOneField(
        AuditEvent, on_delete=models.PROTECT, related_name="seal", db_constraint=False
    )
    epoch = models.PositiveSmallIntegerField(choices=Epoch.choices)
    # Which AUDIT_KEY sealed it (a fingerprint, not the key): a server started with
    # another key is told so instead of seeing every row as tampered with.
    key_id = models.CharField(max_length=16, blank=True)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"#{self.seq} {self.hash[:12]}"
