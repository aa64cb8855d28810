"""Campaigns: one pinned workflow version and a variant plan, run as many cells.

A cell is one brief of the plan (its parameters, where it sits in the matrix, and the
columns a row file carried through). Its generations are the brief's, in the campaign's
lane: they wait as held until the scheduler releases them (scheduler.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.accounts import permissions


class IllegalCampaignTransition(Exception):
    """A campaign cannot move from its status to the one asked for."""


class CampaignQuerySet(models.QuerySet):
    def visible_to(self, user):
        return permissions.visible(self, user, owner="created_by")


class Campaign(models.Model):
    class Status(models.TextChoices):
        # Planned and checked, nothing created to run yet: the operator looks at the
        # count, the first cells and the estimate before submitting.
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"

    class PauseKind(models.TextChoices):
        OPERATOR = "operator", "By a person"
        BREAKER = "breaker", "Circuit breaker"
        BUDGET = "budget", "GPU budget"
        CANARY = "canary", "Canary"

    class Kind(models.TextChoices):
        MATRIX = "matrix", "Matrix"
        ROWS = "rows", "Rows"

    ALLOWED = {
        Status.DRAFT: {Status.RUNNING, Status.CANCELLED},
        Status.RUNNING: {Status.PAUSED, Status.CANCELLED},
        Status.PAUSED: {Status.RUNNING, Status.CANCELLED},
        Status.CANCELLED: set(),
    }

    title = models.CharField(max_length=200)
    workflow_version = models.ForeignKey(
        "catalog.WorkflowVersion", on_delete=models.PROTECT, related_name="campaigns"
    )
    # Copied from the workflow at submission, like a generation's: the scheduler's pool.
    pool = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The plan in its stored form (plans.py): axes and fixed values, or rows. Random
    # seeds are drawn when the plan is made, so the stored plan expands the same way
    # every time.
    plan = models.JSONField()
    cell_count = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # Why it is paused: the operator's words, or the breaker's or budget's figures.
    pause_reason = models.CharField(max_length=500, blank=True)
    pause_kind = models.CharField(max_length=10, choices=PauseKind.choices, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Run the first `canary_size` cells, wait until every one is decided, and release
    # the rest only if their reject rate is within the breaker's.
    canary_size = models.PositiveIntegerField(default=0)
    canary_passed_at = models.DateTimeField(null=True, blank=True)
    # The circuit breaker: pause once at least `breaker_min_decided` cells are decided
    # (counted since `breaker_since`, reset on resume) and more than
    # `breaker_max_reject_rate` of them were rejected.
    breaker_min_decided = models.PositiveIntegerField(default=20)
    breaker_max_reject_rate = models.FloatField(default=0.5)
    breaker_since = models.DateTimeField(null=True, blank=True)
    # GPU-seconds the campaign may spend (backend execution time); none when null.
    gpu_budget_s = models.FloatField(null=True, blank=True)
    # Delivery renditions: [{"name": "square", "width": 1080, "height": 1080,
    # "format": "jpeg"}], made at export.
    renditions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="campaigns"
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Round-robin: the scheduler serves the campaign it released to longest ago first.
    last_released_at = models.DateTimeField(null=True, blank=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "pool"], name="campaign_status_pool_idx"),
            models.Index(fields=["created_by", "-created_at"], name="campaign_owner_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(breaker_max_reject_rate__gte=0) & Q(breaker_max_reject_rate__lte=1),
                name="campaign_reject_rate_0_1",
            ),
        ]

    def __str__(self):
        return f"Campaign #{self.pk} {self.title}"

    @property
    def lane(self) -> str:
        """The lane its generations run in (briefs.Generation.lane)."""
        return f"campaign:{self.pk}"

    @property
    def workflow(self):
        return self.workflow_version.workflow

    def move(self, new_status: str) -> str:
        old = self.status
        if new_status not in self.ALLOWED[self.Status(old)]:
            raise IllegalCampaignTransition(f"{self}: {old} -> {new_status} is not allowed")
        self.status = new_status
        return old

    @property
    def in_canary(self) -> bool:
        return bool(self.canary_size) and self.canary_passed_at is None


class Cell(models.Model):
    """One variant of a campaign: a brief, and where it sits in the plan."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="cells")
    index = models.PositiveIntegerField()
    brief = models.OneToOneField("briefs.Brief", on_delete=models.CASCADE, related_name="cell")
    # Axis name -> the label of its value here ({"product": "mug", "scene": "beach"}).
    coords = models.JSONField(default=dict)
    # A row file's other columns (SKU, locale, channel), carried to review and exports.
    metadata = models.JSONField(default=dict)

    class Meta:
        ordering = ["campaign", "index"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "index"], name="cell_unique_index"),
        ]

    def __str__(self):
        return f"{self.campaign} cell {self.index}"
