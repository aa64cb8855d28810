"""Briefs, the generations that run them, and the images they produce."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviewapp.accounts import permissions
from reviewapp.lib import imagemeta, pools


class IllegalTransition(Exception):
    """A status change the state machine does not allow."""


class BriefQuerySet(models.QuerySet):
    def visible_to(self, user):
        return permissions.visible(self, user, owner="created_by")


class Brief(models.Model):
    """An operator's request: one workflow version and the parameters it was given."""

    workflow_version = models.ForeignKey(
        "catalog.WorkflowVersion", on_delete=models.PROTECT, related_name="briefs"
    )
    params = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="briefs"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = BriefQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The brief list: everyone's (reviewers), or one operator's, newest first.
            models.Index(fields=["-created_at", "-id"], name="brief_newest_idx"),
            models.Index(
                fields=["created_by", "-created_at", "-id"], name="brief_owner_newest_idx"
            ),
        ]

    def __str__(self):
        return f"Brief #{self.pk}"

    @property
    def title(self) -> str:
        text = self.params.get("prompt") or self.workflow_version.workflow.title
        return text if len(text) <= 80 else text[:79] + "…"


class Upload(models.Model):
    """An input image an operator attached to a brief (e.g. the image and mask to inpaint)."""

    brief = models.ForeignKey(Brief, null=True, on_delete=models.CASCADE, related_name="uploads")
    property_name = models.CharField(max_length=100)
    file = models.FileField(upload_to="inputs/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.original_name or self.file.name


# How long past the undo window a decision counts as settled: an undo that passed its
# window check commits within this (it cancels a child and writes its audit row).
SETTLE_MARGIN_S = 5


class GenerationQuerySet(models.QuerySet):
    def visible_to(self, user):
        return permissions.visible(self, user, owner="brief__created_by")

    def for_update(self):
        """Rows locked for this transaction, with the brief, version and workflow that a
        state change reads and audits: how every status change of a generation starts."""
        return self.select_for_update(of=("self",)).select_related(
            "brief__workflow_version__workflow"
        )

    def authored_by(self, user):
        return self.filter(authored_q(user))

    def not_authored_by(self, user):
        return self.exclude(authored_q(user))

    def release(self, queue_timeout_s: int, now=None) -> int:
        """The held rows among these move to queued, their queue deadline counting from
        now: the bulk form of HELD -> QUEUED, for the scheduler. Returns how many moved
        (a row cancelled meanwhile is not held any more and stays as it is)."""
        now = now or timezone.now()
        return self.filter(status=Generation.Status.HELD).update(
            status=Generation.Status.QUEUED,
            queue_deadline=now + timedelta(seconds=queue_timeout_s),
            updated_at=now,
        )

    def settled(self, now=None):
        """Decided (approved or rejected) longer ago than the undo window and a margin:
        what anything acting on a decision outside the app (webhooks, exports) may act
        on. A decision still inside DECISION_UNDO_S may yet be reversed, and an undo
        checked just inside the window commits a moment later (SETTLE_MARGIN_S)."""
        window = settings.DECISION_UNDO_S + SETTLE_MARGIN_S
        cutoff = (now or timezone.now()) - timedelta(seconds=window)
        return self.filter(status__in=Generation.DECIDED, decided_at__lte=cutoff)


def authored_q(user) -> Q:
    """Generations `user` is an author of: the brief's submitter is one of every
    generation of it (also of a row made without the services), editors are listed.
    The one place this is written as a query."""
    return Q(brief__created_by=user) | Q(pk__in=_authored_ids(user))


def _authored_ids(user):
    return Generation.authors.through.objects.filter(user=user).values("generation_id")


class Generation(models.Model):
    """One run of a brief on a backend. Regenerations are children (lineage).

    Status changes only through the mark_* methods, which refuse illegal moves.
    """

    class Status(models.TextChoices):
        # Created, waiting for the campaign scheduler to release it into its pool's queue.
        HELD = "held", "Held"
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Submitting"
        RUNNING = "running", "Running"
        AWAITING_REVIEW = "awaiting_review", "Awaiting review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = frozenset({Status.QUEUED, Status.SUBMITTING, Status.RUNNING})
    # Not yet run to an image: what cancelling stops, what a campaign's progress waits on.
    CANCELLABLE = ACTIVE | {Status.HELD}
    # Handed to a backend: it has a progress bar where a queued one has its place in line.
    STARTED = frozenset({Status.SUBMITTING, Status.RUNNING})
    TERMINAL = frozenset({Status.APPROVED, Status.REJECTED, Status.FAILED, Status.CANCELLED})
    DECIDABLE = frozenset({Status.AWAITING_REVIEW})
    DECIDED = frozenset({Status.APPROVED, Status.REJECTED})
    REGENERABLE = frozenset(
        {Status.AWAITING_REVIEW, Status.REJECTED, Status.APPROVED, Status.FAILED}
    )

    ALLOWED = {
        # HELD -> QUEUED: released by the scheduler (GenerationQuerySet.release).
        Status.HELD: {Status.QUEUED, Status.CANCELLED},
        # QUEUED -> HELD: its campaign paused before any backend saw it (mark_held).
        Status.QUEUED: {Status.SUBMITTING, Status.FAILED, Status.CANCELLED, Status.HELD},
        # SUBMITTING -> QUEUED: a retryable failure before the backend accepted it.
        Status.SUBMITTING: {Status.RUNNING, Status.QUEUED, Status.FAILED, Status.CANCELLED},
        Status.RUNNING: {Status.AWAITING_REVIEW, Status.QUEUED, Status.FAILED, Status.CANCELLED},
        Status.AWAITING_REVIEW: {Status.APPROVED, Status.REJECTED},
        # -> AWAITING_REVIEW: the decision that ended the review was reversed (undo),
        # only through mark_reopened().
        Status.APPROVED: {Status.AWAITING_REVIEW},
        Status.REJECTED: {Status.AWAITING_REVIEW},
        Status.FAILED: set(),
        Status.CANCELLED: set(),
    }

    brief = models.ForeignKey(Brief, on_delete=models.CASCADE, related_name="generations")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    params = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # The pool (and so the RQ queue) that runs it, copied from the workflow when the row
    # is created: a workflow moved to another pool does not strand rows already waiting.
    pool = models.CharField(max_length=64, default=pools.default_pool)
    # Rows of one lane (a campaign's, "campaign:<id>") wait as held and are released into
    # the pool's queue a few at a time, lanes taking turns; blank for interactive work,
    # which is queued at once and goes ahead of released lane rows (dispatch.submit_ahead).
    lane = models.CharField(max_length=40, blank=True, default="")
    # Why it is still queued when no backend of its pool can take it now ("no backend in
    # pool sdxl has checkpoint ..."); cleared when a backend takes it.
    waiting_reason = models.CharField(max_length=500, blank=True)
    # Chosen by us and stored before the POST, so a retry can find the prompt again.
    prompt_id = models.UUIDField(null=True, blank=True, unique=True)
    backend = models.CharField(max_length=255, blank=True)
    # What ran it: sha256 over the backend's object_info entries of the graph's classes
    # plus its ComfyUI version, so "same version, different result" can be explained.
    backend_fingerprint = models.CharField(max_length=64, blank=True)
    comfyui_version = models.CharField(max_length=32, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    queue_deadline = models.DateTimeField(null=True, blank=True)
    run_deadline = models.DateTimeField(null=True, blank=True)
    # Touched by the worker while it follows the run; a stale one means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    progress_text = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations"
    )
    # Who made this image what it is, so none of them may approve it (four eyes): the
    # brief's submitter and whoever edited a parameter other than the seed on the way
    # here. Set once at creation (briefs.services.authors_of_child) and carried down
    # the lineage; a new-seed regeneration adds nobody.
    authors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="authored_generations", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # One run's timeline: created (queued) -> submitted (the backend accepted the prompt)
    # -> execution start and end (ComfyUI's own history timestamps) -> ingested (outputs
    # stored). Queue wait, GPU time and our overhead are the gaps between them.
    submitted_at = models.DateTimeField(null=True, blank=True)
    execution_started_at = models.DateTimeField(null=True, blank=True)
    execution_ended_at = models.DateTimeField(null=True, blank=True)
    ingested_at = models.DateTimeField(null=True, blank=True)
    # When the review ended (approved or rejected); cleared when that decision is
    # reversed. Outside consumers act only once it is older than the undo window.
    decided_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The review queue: generations in a status, oldest first.
            models.Index(fields=["status", "created_at"], name="gen_status_created_idx"),
            # The queue with "any status", newest or oldest first.
            models.Index(fields=["created_at"], name="gen_created_idx"),
            # A pool's waiting line (position, what to submit ahead) and its recent runs.
            models.Index(fields=["pool", "status", "created_at"], name="gen_pool_status_idx"),
            # The pool's pace: its most recent runs by the end of their execution.
            models.Index(fields=["pool", "-execution_ended_at"], name="gen_pool_recent_idx"),
            # A lane's rows by status (the scheduler's "next held", a campaign's counts).
            models.Index(
                fields=["lane", "status", "id"],
                condition=~Q(lane=""),
                name="gen_lane_status_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="gen_progress_0_1"
            ),
        ]

    def __str__(self):
        return f"Generation #{self.pk}"

    @property
    def rq_job_id(self) -> str:
        """Derived from the row, so the same generation is never enqueued twice."""
        return f"generation-{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_started(self) -> bool:
        return self.status in self.STARTED

    @property
    def seed(self):
        return self.params.get("seed")

    def is_authored_by(self, user) -> bool:
        """One indexed lookup; the same rule as GenerationQuerySet.authored_by."""
        if user.pk is None:
            return False
        return Generation.objects.filter(pk=self.pk).authored_by(user).exists()

    def _move(self, new_status: str) -> str:
        old = self.status
        if new_status not in self.ALLOWED[self.Status(old)]:
            raise IllegalTransition(f"{self}: {old} -> {new_status} is not allowed")
        self.status = new_status
        return old

    def mark_held(self) -> None:
        """Back to held: its campaign paused while it waited in the queue. Only a row no
        backend has seen (no prompt id) is taken back; its deadline starts again on release."""
        if self.prompt_id is not None:
            raise IllegalTransition(f"{self}: a row with a prompt on a backend is not held")
        self._move(self.Status.HELD)
        self.queue_deadline = None
        self.waiting_reason = ""

    def mark_submitting(self, *, prompt_id: uuid.UUID, backend: str, run_timeout_s: int) -> None:
        self._move(self.Status.SUBMITTING)
        self.prompt_id = prompt_id
        self.backend = backend
        self.attempt += 1
        self.error = ""
        self.waiting_reason = ""
        now = timezone.now()
        self.started_at = self.started_at or now
        self.heartbeat_at = now
        self.run_deadline = self.run_deadline or now + timezone.timedelta(seconds=run_timeout_s)

    def mark_running(self) -> None:
        """The backend accepted (or already had) the prompt."""
        self._move(self.Status.RUNNING)
        self.submitted_at = timezone.now()

    def mark_waiting(self, reason: str) -> None:
        """Still queued: no backend of its pool can take it now, for ``reason``."""
        if self.status != self.Status.QUEUED:
            raise IllegalTransition(f"{self}: only a queued generation waits for a backend")
        self.waiting_reason = reason if len(reason) <= 500 else reason[:499] + "…"

    def mark_requeued(self, reason: str) -> None:
        """Back to the queue after a temporary failure. prompt_id and backend stay, so
        the next attempt looks for that prompt before submitting anything."""
        self._move(self.Status.QUEUED)
        self.error = reason
        self.progress = 0.0
        self.progress_text = ""

    def mark_awaiting_review(self, *, execution_started_at=None, execution_ended_at=None) -> None:
        """Outputs stored; the execution span is the backend's own (from its history)."""
        if self.status != self.Status.RUNNING:
            raise IllegalTransition(f"{self}: only a running generation is ingested")
        self._move(self.Status.AWAITING_REVIEW)
        self.progress = 1.0
        self.progress_text = ""
        self.finished_at = self.ingested_at = timezone.now()
        self.execution_started_at = execution_started_at
        self.execution_ended_at = execution_ended_at

    @property
    def gpu_seconds(self) -> float | None:
        """The backend's execution span of the run that produced the outputs."""
        if self.execution_started_at and self.execution_ended_at:
            return (self.execution_ended_at - self.execution_started_at).total_seconds()
        return None

    @property
    def timings(self) -> dict[str, float]:
        """Queue wait, GPU time and our overhead (ingest) in seconds, where known."""
        spans = {
            "queue_wait": (self.created_at, self.execution_started_at),
            "gpu": (self.execution_started_at, self.execution_ended_at),
            "ingest": (self.execution_ended_at, self.ingested_at),
        }
        return {
            name: round((end - start).total_seconds(), 3)
            for name, (start, end) in spans.items()
            if start and end
        }

    def mark_failed(self, error: str) -> None:
        self._move(self.Status.FAILED)
        self.error = error
        self.finished_at = timezone.now()

    def mark_cancelled(self) -> None:
        self._move(self.Status.CANCELLED)
        self.finished_at = timezone.now()

    def mark_approved(self, *, at=None) -> None:
        """`at`: the deciding decision's time, which the undo window counts from."""
        self._move(self.Status.APPROVED)
        self.decided_at = at or timezone.now()

    def mark_rejected(self, *, at=None) -> None:
        self._move(self.Status.REJECTED)
        self.decided_at = at or timezone.now()

    def mark_reopened(self) -> None:
        """Back to review: the decision that approved or rejected it was reversed."""
        if self.status not in self.DECIDED:
            raise IllegalTransition(f"{self}: only a decided generation is reopened")
        self._move(self.Status.AWAITING_REVIEW)
        self.decided_at = None


class Asset(models.Model):
    """An output image of a generation, stored through Django's storage API.

    `file` is the image exactly as the backend returned it; its sha256 is the asset's
    identity. ComfyUI writes the prompt (and the UI workflow, when sent) into it, so what
    is served and exported is `delivery_file`: the same pixels without that metadata,
    unless the workflow opts in to embedding it (see `open_delivered`).
    """

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="assets")
    node_id = models.CharField(max_length=32)
    index = models.PositiveIntegerField()
    file = models.FileField(upload_to="assets/%Y/%m/")
    thumbnail = models.FileField(upload_to="thumbs/%Y/%m/")
    sha256 = models.CharField(max_length=64, db_index=True)
    # The copy without generation metadata (text/EXIF/XMP), and its sha256 (equal to
    # `sha256` when the original had none). Blank on assets stored before copies existed.
    delivery_file = models.FileField(upload_to="assets/%Y/%m/", blank=True)
    delivery_sha256 = models.CharField(max_length=64, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=64, default="image/png")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["generation", "node_id", "index"]
        constraints = [
            # A re-run of the job must never store the same output twice.
            models.UniqueConstraint(
                fields=["generation", "node_id", "index"], name="asset_unique_output"
            ),
        ]

    def __str__(self):
        return f"{self.generation} {self.node_id}[{self.index}]"

    def open_delivered(self):
        """A binary file object with what is served and exported: the original when the
        workflow embeds generation metadata, else the copy without it."""
        if self.generation.brief.workflow_version.workflow.embed_generation_metadata:
            return self.file.open("rb")
        if self.delivery_file:
            return self.delivery_file.open("rb")
        # Stored before delivery copies existed: strip on the way out.
        with self.file.open("rb") as fh:
            return io.BytesIO(imagemeta.strip_metadata(fh.read()))
