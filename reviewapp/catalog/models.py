"""Workflows and their immutable versions."""

from django.db import models
from django.db.models import Q


class Workflow(models.Model):
    """A named workflow (e.g. sdxl_base_refiner); its content lives in versions."""

    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # RQ queue (and so the pool of backends) that runs this workflow.
    queue = models.CharField(max_length=64, default="default")
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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    @property
    def pool(self) -> str:
        return self.queue

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
