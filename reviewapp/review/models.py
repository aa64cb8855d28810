"""Reviewers' decisions on generations, and who is looking at which one."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Decision(models.Model):
    """Approve, reject (with a reason), regenerate or undo, by one reviewer, at one time.

    Rows are never deleted or rewritten: an undo is a row of its own (`action=undo`)
    that the decision it reverses points to with `reversed_by`.
    """

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        REGENERATE = "regenerate", "Regenerated"
        UNDO = "undo", "Undone"

    generation = models.ForeignKey(
        "briefs.Generation", on_delete=models.CASCADE, related_name="decisions"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    # What a regenerate changed ({"seed": [12, 98]}); empty for other actions.
    changes = models.JSONField(default=dict, blank=True)
    # This decision took the generation out of review: it approved it (the last of the
    # approvals needed), rejected it, or regenerated it while it awaited review. Undoing
    # such a decision returns the generation to review; undoing another does not.
    ended_review = models.BooleanField(default=False)
    # Sent with the form that made the decision: a double submit finds this row again
    # instead of deciding twice.
    idempotency_key = models.UUIDField(null=True, blank=True, unique=True)
    # For a regenerate: the child generation it created.
    child = models.OneToOneField(
        "briefs.Generation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_by_decision",
    )
    # The undo row that reversed this decision; a reversed decision counts for nothing.
    reversed_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reverses"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One standing approval per reviewer per generation; N approvals need N
            # people. An approval that was undone no longer stands.
            models.UniqueConstraint(
                fields=["generation", "actor"],
                condition=Q(action="approve", reversed_by__isnull=True),
                name="decision_one_standing_approval",
            ),
        ]
        indexes = [
            # A reviewer's last decision (what they may undo).
            models.Index(fields=["actor", "-created_at", "-id"], name="decision_actor_latest_idx"),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.generation} by {self.actor}"

    @property
    def is_reversed(self) -> bool:
        return self.reversed_by_id is not None

    @property
    def noun(self) -> str:
        """ "approval", "rejection", "regeneration", "undo": for sentences."""
        return _NOUNS[self.action]


_NOUNS = {
    Decision.Action.APPROVE: "approval",
    Decision.Action.REJECT: "rejection",
    Decision.Action.REGENERATE: "regeneration",
    Decision.Action.UNDO: "undo",
}


class Claim(models.Model):
    """A reviewer has this generation open: a lease that ends at `expires_at` unless the
    open page renews it. In the database so every web process sees it; an expired row
    means nothing and is taken over by the next reviewer who opens the generation."""

    generation = models.OneToOneField(
        "briefs.Generation", primary_key=True, on_delete=models.CASCADE, related_name="claim"
    )
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # New each time a page opens the generation: a release sent by a page that has since
    # been reloaded (its beacon can arrive after the new page's claim) carries the old
    # token and releases nothing.
    token = models.UUIDField(default=uuid.uuid4)
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.generation} held by {self.holder} until {self.expires_at:%H:%M:%S}"

    def is_live(self, now=None) -> bool:
        return self.expires_at > (now or timezone.now())

    @property
    def opened_ago(self) -> str:
        """How long ago it was opened: "12 s", "4 min"."""
        seconds = max(0, int((timezone.now() - self.claimed_at).total_seconds()))
        return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"
