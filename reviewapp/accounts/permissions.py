"""Who may do what. Views and services ask these predicates; nothing else decides.

A superuser holds every role. Roles are groups (see roles.py); a user may hold several.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from reviewapp.accounts import roles

if TYPE_CHECKING:
    from reviewapp.briefs.models import Brief, Generation
    from reviewapp.campaigns.models import Campaign


def role_names(user) -> set[str]:
    if not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(roles.ALL)
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))
        user._role_names = cached
    return cached


def has_role(user, role: str) -> bool:
    return role in role_names(user)


def can_submit(user) -> bool:
    return has_role(user, roles.OPERATOR)


def can_review(user) -> bool:
    return has_role(user, roles.REVIEWER)


def can_view_queue(user) -> bool:
    """The review queue and its navigation: reviewers to decide, auditors to read (they
    get no decision controls; can_decide and can_regenerate say no to them)."""
    return can_review(user) or has_role(user, roles.AUDITOR)


def can_manage_workflows(user) -> bool:
    return has_role(user, roles.WORKFLOW_ADMIN)


def can_view_audit(user) -> bool:
    return has_role(user, roles.AUDITOR) or user.is_superuser


def sees_everything(user) -> bool:
    """Reviewers and auditors see every brief; operators their own. Workflow admins manage
    workflow versions and read those (their pages), not the briefs run with them."""
    return bool(role_names(user) & {roles.REVIEWER, roles.AUDITOR})


def visible(queryset, user, *, owner: str):
    """`queryset` narrowed to what `user` may see: everything for reviewers and
    auditors, what they submitted for operators (`owner` is the lookup of its
    submitter, e.g. "brief__created_by"), nothing for anyone else."""
    if sees_everything(user):
        return queryset
    if can_submit(user):
        return queryset.filter(**{owner: user})
    return queryset.none()


def can_view_brief(user, brief: Brief) -> bool:
    return sees_everything(user) or (can_submit(user) and brief.created_by_id == user.pk)


def can_decide(user, generation: Generation) -> bool:
    """Approve or reject. Nobody decides on a generation they are an author of (they
    submitted the brief, or edited parameters on its lineage), unless ALLOW_SELF_REVIEW
    is on. The queue's "awaiting for me" asks the same rule (decidable_by)."""
    if not can_review(user):
        return False
    return settings.ALLOW_SELF_REVIEW or not generation.is_authored_by(user)


def decidable_by(user, generations):
    """`generations` narrowed to those `user` may decide on, by can_decide's rule."""
    if not can_review(user):
        return generations.none()
    return generations if settings.ALLOW_SELF_REVIEW else generations.not_authored_by(user)


def can_regenerate(user, generation: Generation) -> bool:
    """Reviewers regenerate anything they see; operators their own briefs."""
    return can_review(user) or (can_submit(user) and generation.brief.created_by_id == user.pk)


def can_cancel(user, generation: Generation) -> bool:
    """Reviewers cancel anything; operators their own briefs' generations."""
    return can_review(user) or (can_submit(user) and generation.brief.created_by_id == user.pk)


def can_view_campaign(user, campaign: Campaign) -> bool:
    return sees_everything(user) or (can_submit(user) and campaign.created_by_id == user.pk)


def can_steer_campaign(user, campaign: Campaign) -> bool:
    """Pause, resume, cancel, change its breaker and budget: its operator, or a reviewer
    (who may stop a campaign that is going wrong, as they cancel any generation)."""
    return can_review(user) or (can_submit(user) and campaign.created_by_id == user.pk)
