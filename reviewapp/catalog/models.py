"""Workflows and their immutable versions."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.lib.pools import default_pool


class IllegalVersionTransition(Exception):
    """A version cannot move from its status to the one asked for (see WorkflowVersion.ALLOWED)."""


class Workflow(models.Model):
    """A named workflow (e.g. sdxl_base_refiner); its content lives in versions."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The pool (its backends, and the RQ queue of the same name) that runs this workflow;
    # one of settings.COMFYUI_POOLS, which the admin, the import and `manage.py check` hold
    # it to (reviewapp.lib.pools).
    pool = models.CharField(max_length=64, default=default_pool)
    # Distinct reviewers who must approve before a generation counts as approved.
    required_approvals = models.PositiveSmallIntegerField(default=1)
    # Deadlines: how long a generation may wait for a worker, and run on a backend,
    # before it fails with that reason (and, if running, is interrupted there).
    queue_timeout_s = models.PositiveIntegerField(default=3600)
    run_timeout_s = models.PositiveIntegerField(default=900)
    # ComfyUI's SaveImage writes the whole prompt (every parameter) and the UI workflow
    # into the PNG. Off: outputs are served and exported without them (the stored
    # original keeps them). A delivery choice, not part of the parameter contract, so it
    # lives here and applies to every version, and to assets already stored.
    embed_generation_metadata = models.BooleanField(default=False)
    # A campaign's circuit breaker, unless it sets its own: pause once this many cells
    # are decided and more than this share of them were rejected.
    campaign_breaker_min_decided = models.PositiveIntegerField(default=20)
    campaign_breaker_max_reject_rate = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    @property
    def published_version(self):
        return self.versions.filter(status=WorkflowVersion.Status.PUBLISHED).first()


class WorkflowVersion(models.Model):
    """One exact graph + schema. Its content never changes once created; every
    brief pins the version it ran with."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    # The moves publish() and retire() allow. A retired version may be published again:
    # that is how a workflow is rolled back. Retiring a draft sets it aside unpublished.
    # Nothing goes back to draft. Staying put is not a move: the services treat publishing
    # a published version (or retiring a retired one) as done, before asking.
    ALLOWED = {
        Status.DRAFT: {Status.PUBLISHED, Status.RETIRED},
        Status.PUBLISHED: {Status.RETIRED},
        Status.RETIRED: {Status.PUBLISHED},
    }

    CONTENT_FIELDS = ("graph", "schema", "checksum", "number", "workflow_id")

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    schema = models.JSONField()
    # sha256 of the canonical JSON of {"graph": ..., "schema": ...}.
    checksum = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    source = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="wfv_unique_number"),
            models.UniqueConstraint(fields=["workflow", "checksum"], name="wfv_unique_checksum"),
            models.UniqueConstraint(
                fields=["workflow"],
                condition=Q(status="published"),
                name="wfv_one_published_per_workflow",
            ),
        ]

    def __str__(self):
        return f"{self.workflow.slug} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = WorkflowVersion.objects.filter(pk=self.pk).values(*self.CONTENT_FIELDS).first()
            if stored and any(stored[f] != getattr(self, f) for f in self.CONTENT_FIELDS):
                raise ValueError(f"{self} is immutable: make a new version instead")
        super().save(*args, **kwargs)

    def _move(self, new_status: str) -> str:
        old = self.status
        if new_status not in self.ALLOWED[self.Status(old)]:
            raise IllegalVersionTransition(f"{self}: {old} -> {new_status} is not allowed")
        self.status = new_status
        return old

    def publish(self) -> str:
        """Mark this version published (in memory; the caller saves). Returns the old status.

        One published version per workflow is the caller's to keep: retire the published
        one first (catalog.services.publish_version does, under a lock; the constraint
        wfv_one_published_per_workflow refuses a second).
        """
        old = self._move(self.Status.PUBLISHED)
        self.published_at = timezone.now()
        return old

    def retire(self) -> str:
        """Mark this version retired (in memory; the caller saves). Returns the old status."""
        return self._move(self.Status.RETIRED)

    def contract(self):
        """The parameter contract, built once per process: checking a schema against the
        JSON Schema meta-schema costs more than the rest of a submit, and a version's
        content never changes (its checksum names it)."""
        return _contract_for(self.checksum, self.schema)


_contracts: dict[str, object] = {}


def _contract_for(checksum: str, schema: dict):
    from comfybridge.contract import Contract

    contract = _contracts.get(checksum)
    if contract is None:
        contract = _contracts[checksum] = Contract.from_schema(schema)
    return contract
