"""Audit receivers for accounts: sign-in and sign-out, and every change to a user's flags,
password, groups or permissions, whatever made it (admin, shell, management command).

Signals and not admin hooks, so no path around the admin goes unrecorded. The actor is the
signed-in user of the current request, or the system.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from reviewapp.accounts import services
from reviewapp.audit import actions
from reviewapp.audit.actor import current_actor
from reviewapp.audit.services import record

User = get_user_model()

# The fields whose changes are recorded, old and new value. The password is recorded as
# "changed" or "disabled", never its hash; last_login changes on every sign-in and is not.
WATCHED = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    services.record_login(user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        services.record_logout(user)


@receiver(pre_save, sender=User)
def _remember_user(sender, instance, update_fields=None, **kwargs):
    instance._audit_before = None
    if instance.pk is None or instance._state.adding:
        return
    if update_fields is not None and not set(update_fields) & {*WATCHED, "password"}:
        return
    instance._audit_before = (
        User._default_manager.filter(pk=instance.pk).values(*WATCHED, "password").first()
    )


@receiver(post_save, sender=User)
def _record_user(sender, instance, created, update_fields=None, **kwargs):
    if created:
        record(
            actions.USER_CREATED,
            actor=current_actor(),
            target=instance,
            changes={field: getattr(instance, field) for field in WATCHED},
        )
        return
    before = instance.__dict__.pop("_audit_before", None)
    if before is None:
        return
    changes = {
        field: [before[field], getattr(instance, field)]
        for field in WATCHED
        if before[field] != getattr(instance, field)
    }
    password = _password_change(before["password"], instance, update_fields)
    if password:
        changes["password"] = password
    if changes:
        record(actions.USER_CHANGED, actor=current_actor(), target=instance, changes=changes)


def _password_change(old_hash: str, user, update_fields) -> str:
    if old_hash == user.password:
        return ""
    if not is_password_usable(user.password):
        return "disabled"
    # set_password() keeps the raw password until the save; check_password() upgrading
    # the hash of the same password to a newer hasher saves the password alone without it.
    rehash = (
        user._password is None and update_fields is not None and set(update_fields) == {"password"}
    )
    return "" if rehash else "changed"


@receiver(post_delete, sender=User)
def _record_user_deleted(sender, instance, **kwargs):
    record(
        actions.USER_DELETED,
        actor=current_actor(),
        target=instance,
        changes={"username": instance.get_username()},
    )


def _names(model, pks) -> list[str]:
    return sorted(str(obj) for obj in model._default_manager.filter(pk__in=pks))


def _membership_receiver(field: str, action_name: str):
    """Records additions and removals on User.<field> (groups, user_permissions), from
    either side (user.groups.add(g) or group.user_set.add(u)), one row per user."""
    through = getattr(User, field).through
    related = User._meta.get_field(field).related_model

    def receiver_(sender, instance, action, reverse, pk_set, **kwargs):
        if action in ("pre_remove", "pre_clear"):
            # Remember what is really there: remove() is told ids that may not be.
            if reverse:
                members = through.objects.filter(**{f"{related._meta.model_name}_id": instance.pk})
                users = set(members.values_list("user_id", flat=True))
                if pk_set is not None:
                    users &= set(pk_set)
                instance._audit_members = {user_id: {instance.pk} for user_id in users}
            else:
                held = set(getattr(instance, field).values_list("pk", flat=True))
                instance._audit_members = {
                    instance.pk: held & set(pk_set) if pk_set is not None else held
                }
            return
        if action == "post_add":
            changed = (
                {user_id: {instance.pk} for user_id in pk_set}
                if reverse
                else {instance.pk: set(pk_set)}
            )
            key = "added"
        elif action in ("post_remove", "post_clear"):
            changed = instance.__dict__.pop("_audit_members", {})
            key = "removed"
        else:
            return
        actor = current_actor()
        for user_id, pks in changed.items():
            if not pks:
                continue
            user = instance if not reverse else User._default_manager.filter(pk=user_id).first()
            if user is None:
                continue
            record(action_name, actor=actor, target=user, changes={key: _names(related, pks)})

    m2m_changed.connect(receiver_, sender=through, weak=False, dispatch_uid=f"audit-{field}")


_membership_receiver("groups", actions.USER_ROLES_CHANGED)
_membership_receiver("user_permissions", actions.USER_PERMISSIONS_CHANGED)


@receiver(pre_save, sender=Group)
def _remember_group(sender, instance, **kwargs):
    instance._audit_name = (
        None
        if instance._state.adding
        else Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    )


@receiver(post_save, sender=Group)
def _record_group(sender, instance, created, **kwargs):
    before = instance.__dict__.pop("_audit_name", None)
    if created or before != instance.name:
        record(
            actions.GROUP_CHANGED,
            actor=current_actor(),
            target=instance,
            changes={"name": [before, instance.name]},
        )


@receiver(pre_delete, sender=Group)
def _record_group_deleted(sender, instance, **kwargs):
    # Before the delete: its members lose the role without an m2m signal.
    members = sorted(instance.user_set.values_list(User.USERNAME_FIELD, flat=True))
    record(
        actions.GROUP_DELETED,
        actor=current_actor(),
        target=instance,
        changes={"name": instance.name, "members": members},
    )
