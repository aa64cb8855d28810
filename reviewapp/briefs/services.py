"""Every state change of briefs and generations goes through these functions."""

from __future__ import annotations

import hashlib
from functools import partial

from django.core.exceptions import PermissionDenied
from django.db import transaction

from reviewapp.accounts import permissions
from reviewapp.audit.services import record
from reviewapp.briefs.jobs import enqueue_generation
from reviewapp.briefs.models import Brief, Generation, Upload
from reviewapp.catalog.models import WorkflowVersion


class NotPublished(Exception):
    """Briefs may only be submitted against the published version of a workflow."""


@transaction.atomic
def submit_brief(
    version: WorkflowVersion, params: dict, *, actor, files: dict | None = None
) -> Brief:
    """Validate `params` against the version's schema, store the brief and its first
    generation, audit it, and enqueue the run once the transaction commits.

    `files` maps image properties to uploaded files; they are stored and their
    storage names become the property values. Raises ParamsInvalid (per property).
    """
    if not permissions.can_submit(actor):
        raise PermissionDenied("only operators submit briefs")
    if version.status != WorkflowVersion.Status.PUBLISHED:
        raise NotPublished(f"{version} is not the published version")
    contract = version.contract()
    params = dict(params)
    uploads = []
    for name, uploaded in (files or {}).items():
        data = uploaded.read()
        upload = Upload(
            property_name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            original_name=getattr(uploaded, "name", "")[:255],
        )
        upload.file.save(f"{upload.sha256[:16]}.png", _content(data), save=False)
        uploads.append(upload)
        params[name] = upload.file.name
    clean = contract.validate(params)
    brief = Brief.objects.create(workflow_version=version, params=clean, created_by=actor)
    for upload in uploads:
        upload.brief = brief
        upload.save()
    generation = Generation.objects.create(brief=brief, params=clean, created_by=actor)
    slug = version.workflow.slug
    record(
        "brief.submitted",
        actor=actor,
        target=brief,
        workflow_slug=slug,
        changes={"version": version.number, "params": clean},
    )
    record(
        "generation.queued",
        actor=actor,
        target=generation,
        workflow_slug=slug,
        changes={"brief": brief.pk, "seed": clean.get("seed")},
    )
    _enqueue_on_commit(generation)
    return brief


def _content(data: bytes):
    from django.core.files.base import ContentFile

    return ContentFile(data)


def _enqueue_on_commit(generation: Generation) -> None:
    queue = generation.brief.workflow_version.workflow.queue
    # robust: if Redis is down the row stays queued and the reconciler enqueues it
    # later; the operator's request does not fail.
    transaction.on_commit(partial(enqueue_generation, generation.pk, queue), robust=True)


@transaction.atomic
def create_child_generation(parent: Generation, params: dict, *, actor) -> Generation:
    """A regeneration: a new run of the same brief and version, linked to its parent."""
    version = parent.brief.workflow_version
    clean = version.contract().validate(params)
    child = Generation.objects.create(
        brief=parent.brief, parent=parent, params=clean, created_by=actor
    )
    changed = {k: [parent.params.get(k), v] for k, v in clean.items() if parent.params.get(k) != v}
    record(
        "generation.queued",
        actor=actor,
        target=child,
        workflow_slug=version.workflow.slug,
        changes={"brief": parent.brief_id, "parent": parent.pk, "changed": changed},
    )
    _enqueue_on_commit(child)
    return child


def requeue_orphans(*, older_than_s: float = 60.0) -> list[int]:
    """Enqueue again generations that are queued but whose job Redis no longer has.

    The database is the ledger: Redis may lose its data, or have been down when the
    brief was submitted. Enqueueing is idempotent (the job id comes from the row).
    """
    import django_rq
    from django.utils import timezone

    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    requeued = []
    queued = Generation.objects.filter(
        status=Generation.Status.QUEUED, updated_at__lt=cutoff
    ).select_related("brief__workflow_version__workflow")
    for generation in queued:
        queue_name = generation.brief.workflow_version.workflow.queue
        job = django_rq.get_queue(queue_name).fetch_job(generation.rq_job_id)
        if job is None or job.get_status(refresh=False) in (
            "finished",
            "failed",
            "canceled",
            "stopped",
        ):
            enqueue_generation(generation.pk, queue_name)
            requeued.append(generation.pk)
    return requeued
