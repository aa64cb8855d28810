"""Every state change of briefs and generations goes through these functions."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from comfybridge.errors import ParamsInvalid
from reviewapp.accounts import permissions
from reviewapp.audit import actions
from reviewapp.audit.services import record, record_many
from reviewapp.briefs.models import Brief, Generation, Upload
from reviewapp.briefs.worker.enqueue import drop_job, enqueue_cancel, enqueue_generation
from reviewapp.catalog.models import WorkflowVersion
from reviewapp.lib import images


class NotPublished(Exception):
    """Briefs may only be submitted against the published version of a workflow."""


def refuse_unless_published(version: WorkflowVersion) -> None:
    """The one place the rule is checked: briefs, held cells and campaign drafts."""
    if version.status != WorkflowVersion.Status.PUBLISHED:
        raise NotPublished(f"{version} is not the published version")


@transaction.atomic
def submit_brief(
    version: WorkflowVersion, params: dict, *, actor, files: dict | None = None
) -> Brief:
    """Validate `params` against the version's schema, store the brief and its first
    generation, audit it, and enqueue the run once the transaction commits.

    `files` maps image properties to uploaded files (or the images.PreparedImage the form
    made of them); they are stored re-encoded and their storage names become the property
    values. Raises ParamsInvalid (per property).
    """
    if not permissions.can_submit(actor):
        raise PermissionDenied("only operators submit briefs")
    refuse_unless_published(version)
    contract = version.contract()
    params = dict(params)
    uploads = []
    for name, prepared in _prepared_inputs(contract, files or {}).items():
        # Named by the hash of the re-encoded bytes: those are what the backend receives.
        upload = Upload(property_name=name, sha256=prepared.sha256, original_name=prepared.name)
        upload.file.save(f"{upload.sha256[:16]}.png", _content(prepared.data), save=False)
        uploads.append(upload)
        params[name] = upload.file.name
    clean = contract.validate(params)
    brief = Brief.objects.create(workflow_version=version, params=clean, created_by=actor)
    for upload in uploads:
        upload.brief = brief
        upload.save()
    generation = _new_generation(brief, clean, actor=actor)
    slug = version.workflow.slug
    record(
        actions.BRIEF_SUBMITTED,
        actor=actor,
        target=brief,
        workflow_slug=slug,
        changes={"version": version.number, "params": clean},
    )
    record(
        actions.GENERATION_QUEUED,
        actor=actor,
        target=generation,
        workflow_slug=slug,
        changes={"brief": brief.pk, "seed": clean.get("seed")},
    )
    _enqueue_on_commit(generation)
    return brief


# Rows per INSERT for the bulk path: under SQLite's variable limit, few round trips.
BULK_BATCH = 500


def submit_held(
    version: WorkflowVersion, params_list: list[dict], *, actor, lane: str, audit: list[dict]
) -> list[Generation]:
    """Many briefs at once, each with its first generation held in `lane` for the
    scheduler: the bulk form of submit_brief, for a campaign's cells.

    Call inside the caller's transaction. `params_list` must already be validated
    against the version's contract (contract.validate); `audit[i]` is what the held
    event of the i-th generation records besides its brief. Returns the generations
    (with their briefs), in order. Nothing is enqueued: the scheduler releases them.
    """
    if not permissions.can_submit(actor):
        raise PermissionDenied("only operators submit briefs")
    refuse_unless_published(version)
    if not lane:
        raise ValueError("held generations need a lane")
    workflow = version.workflow
    now = timezone.now()
    briefs = Brief.objects.bulk_create(
        [
            Brief(workflow_version=version, params=params, created_by=actor, created_at=now)
            for params in params_list
        ],
        batch_size=BULK_BATCH,
    )
    generations = Generation.objects.bulk_create(
        [
            Generation(
                brief=brief,
                params=brief.params,
                created_by=actor,
                created_at=now,
                pool=workflow.pool,
                lane=lane,
                status=Generation.Status.HELD,
            )
            for brief in briefs
        ],
        batch_size=BULK_BATCH,
    )
    through = Generation.authors.through
    through.objects.bulk_create(
        [through(generation_id=g.pk, user_id=actor.pk) for g in generations],
        batch_size=BULK_BATCH,
    )
    record_many(
        actions.GENERATION_HELD,
        actor=actor,
        items=(
            (generation, {"brief": generation.brief_id, **extra})
            for generation, extra in zip(generations, audit, strict=True)
        ),
        workflow_slug=workflow.slug,
    )
    return generations


# Parameters whose change does not make the one who changed them an author: a new seed
# asks for another draw of the same image, it does not shape it.
AUTHORSHIP_NEUTRAL_PARAMS = frozenset({"seed"})


def edited_params(old: dict, new: dict) -> list[str]:
    """The parameters that differ, seed excepted: an edit in the four-eyes sense."""
    names = (set(old) | set(new)) - AUTHORSHIP_NEUTRAL_PARAMS
    return sorted(name for name in names if old.get(name) != new.get(name))


def authors_of_child(parent: Generation, params: dict, *, actor) -> set[int]:
    """The user ids who author a regeneration: the parent's authors, plus `actor` when
    they edited a parameter other than the seed. The one place this rule is written."""
    authors = set(parent.authors.values_list("pk", flat=True)) | {parent.brief.created_by_id}
    if edited_params(parent.params, params):
        authors.add(actor.pk)
    return authors


def _prepared_inputs(contract, files: dict) -> dict[str, images.PreparedImage]:
    """Each uploaded image checked and re-encoded (see images.prepare_input). The form
    hands over PreparedImage already; anything else (a file from another caller) is
    prepared here. Raises ParamsInvalid naming the property and the file."""
    prepared, errors = {}, {}
    image_properties = set(contract.image_properties())
    for name, uploaded in files.items():
        if name not in image_properties:
            errors[name] = ["not an image parameter of this workflow"]
            continue
        if isinstance(uploaded, images.PreparedImage):
            prepared[name] = uploaded
            continue
        filename = (getattr(uploaded, "name", "") or "the file")[:100]
        try:
            prepared[name] = images.prepare_input(
                uploaded.read(),
                filename,
                max_pixels=settings.IMAGE_MAX_PIXELS,
                formats=contract.image_formats(name),
            )
        except images.BadImage as exc:
            errors[name] = [f"{filename}: {exc}."]
    if errors:
        raise ParamsInvalid(errors)
    return prepared


def _new_generation(
    brief: Brief, params: dict, *, actor, parent=None, hold: bool = False
) -> Generation:
    workflow = brief.workflow_version.workflow
    now = timezone.now()
    generation = Generation.objects.create(
        brief=brief,
        parent=parent,
        params=params,
        created_by=actor,
        created_at=now,
        pool=workflow.pool,
        # A regeneration stays in its parent's lane (a campaign cell's child is the cell's).
        lane=parent.lane if parent is not None else "",
        status=Generation.Status.HELD if hold else Generation.Status.QUEUED,
        # A held row's deadline counts from its release.
        queue_deadline=None if hold else now + timedelta(seconds=workflow.queue_timeout_s),
    )
    if parent is None:
        generation.authors.set([brief.created_by_id])
    else:
        generation.authors.set(authors_of_child(parent, params, actor=actor))
    return generation


def _content(data: bytes):
    from django.core.files.base import ContentFile

    return ContentFile(data)


def _enqueue_on_commit(generation: Generation) -> None:
    # robust: if Redis is down the row stays queued and the reconciler enqueues it
    # later; the operator's request does not fail.
    transaction.on_commit(
        partial(enqueue_generation, generation.pk, generation.pool, new=True), robust=True
    )


@transaction.atomic
def create_child_generation(
    parent: Generation, params: dict, *, actor, hold: bool = False
) -> Generation:
    """A regeneration: a new run of the same brief and version, linked to its parent.

    ``hold``: it waits as held for its lane's scheduler (a campaign's bulk regenerate)
    instead of going to the queue at once; only a row in a lane can be held."""
    version = parent.brief.workflow_version
    clean = version.contract().validate(params)
    hold = hold and bool(parent.lane)
    child = _new_generation(parent.brief, clean, actor=actor, parent=parent, hold=hold)
    changed = {k: [parent.params.get(k), v] for k, v in clean.items() if parent.params.get(k) != v}
    record(
        actions.GENERATION_HELD if hold else actions.GENERATION_QUEUED,
        actor=actor,
        target=child,
        workflow_slug=version.workflow.slug,
        changes={"brief": parent.brief_id, "parent": parent.pk, "changed": changed},
    )
    if not hold:
        _enqueue_on_commit(child)
    return child


class NotCancellable(Exception):
    """Only queued or running generations can be cancelled."""


@transaction.atomic
def cancel_generation(generation: Generation, *, actor) -> Generation:
    """Stop a held, queued or running generation: its job leaves the queue, its prompt is
    removed or interrupted (targeted) on the backend, and it ends as cancelled."""
    locked = Generation.objects.for_update().get(pk=generation.pk)
    if not permissions.can_cancel(actor, locked):
        raise PermissionDenied("you may not cancel this generation")
    if locked.status == Generation.Status.CANCELLED:
        return locked
    if locked.status not in Generation.CANCELLABLE:
        raise NotCancellable(f"{locked} is already {locked.get_status_display().lower()}")
    old = locked.status
    locked.mark_cancelled()
    locked.save()
    workflow = locked.brief.workflow_version.workflow
    record(actions.GENERATION_CANCELLED, actor=actor, target=locked, workflow_slug=workflow.slug,
           changes={"status": [old, locked.status]})  # fmt: skip
    if old != Generation.Status.HELD:
        transaction.on_commit(partial(drop_job, locked.pk, locked.pool), robust=True)
    if locked.prompt_id and locked.backend:
        transaction.on_commit(
            partial(enqueue_cancel, locked.backend, str(locked.prompt_id), locked.pool),
            robust=True,
        )
    return locked
