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
    # For a regenerate: the child generation it created.
    child = models.OneToOneField(
        "briefs.Generation", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="created_by_decision",
    )  # fmt: skip
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.generation} by {self.actor}"
