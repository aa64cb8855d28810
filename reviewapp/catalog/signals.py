"""Audit receivers for workflow settings (required approvals, deadlines, pool, titles)
changed outside the version services: Django admin, a shell, a data fix.

Creating a workflow is recorded by catalog.services.add_version, the one way to make one.
"""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from reviewapp.audit import actions
from reviewapp.audit.actor import current_actor
from reviewapp.audit.services import record
from reviewapp.catalog.models import Workflow

# Every editable field; created_at never changes.
FIELDS = tuple(
    f.attname for f in Workflow._meta.concrete_fields if not f.primary_key and f.editable
)


@receiver(pre_save, sender=Workflow)
def _remember_workflow(sender, instance, **kwargs):
    instance._audit_before = (
        None
        if instance._state.adding
        else Workflow.objects.filter(pk=instance.pk).values(*FIELDS).first()
    )


@receiver(post_save, sender=Workflow)
def _record_workflow(sender, instance, created, **kwargs):
    before = instance.__dict__.pop("_audit_before", None)
    if created or before is None:
        return
    changes = {
        field: [before[field], getattr(instance, field)]
        for field in FIELDS
        if before[field] != getattr(instance, field)
    }
    if changes:
        record(
            actions.WORKFLOW_CHANGED,
            actor=current_actor(),
            target=instance,
            workflow_slug=instance.slug,
            changes=changes,
        )


@receiver(post_delete, sender=Workflow)
def _record_workflow_deleted(sender, instance, **kwargs):
    record(
        actions.WORKFLOW_DELETED,
        actor=current_actor(),
        target=instance,
        workflow_slug=instance.slug,
        changes={"title": instance.title},
    )
