"""Reviewers' decisions on generations."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Decision(models.Model):
    """Approve, reject (with a reason) or regenerate, by one reviewer, at one time."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        REGENERATE = "regenerate", "Regenerated"

    generation = models.ForeignKey(
        "briefs.Generation", on_delete=models.CASCADE, related_name="decisions"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    # Sent with the form that made the decision: a double submit finds this row again
    # instead of deciding twice.
    idempotency_key = models.UUIDField(null=True, blank=True, unique=True)
    # For a regenerate: the child generation it created.
    child = models.OneToOneField(
        "briefs.Generation", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="created_by_decision",
    )  # fmt: skip
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One approval per reviewer per generation; N approvals need N people.
            models.UniqueConstraint(
                fields=["generation", "actor"],
                condition=models.Q(action="approve"),
                name="decision_one_approval_per_reviewer",
            ),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.generation} by {self.actor}"
