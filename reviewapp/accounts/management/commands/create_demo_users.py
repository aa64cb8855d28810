from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviewapp.accounts import roles

# Development only: the command refuses to run when DEBUG is off. The passwords pass the
# password validators (AUTH_PASSWORD_VALIDATORS), like anybody's.
DEMO_USERS = [
    ("operator", "submit-briefs-demo", [roles.OPERATOR]),
    ("reviewer", "judge-images-demo", [roles.REVIEWER]),
    ("wfadmin", "publish-graphs-demo", [roles.WORKFLOW_ADMIN]),
    ("auditor", "read-the-trail-demo", [roles.AUDITOR]),
]


class Command(BaseCommand):
    help = "Create one demo account per role and print the credentials (DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("refusing to create demo accounts with DEBUG off")
        User = get_user_model()
        self.stdout.write("Demo accounts (development only):")
        for username, password, role_names in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(
                    f"demo password of {username}: {' '.join(exc.messages)}"
                ) from None
            # Only what differs is saved: each `make run` would otherwise audit a change.
            if not user.check_password(password) or not user.is_active:
                user.set_password(password)
                user.is_active = True
                user.save()
            user.groups.set(Group.objects.filter(name__in=role_names))
            label = ", ".join(roles.LABELS[r] for r in role_names)
            self.stdout.write(f"  {label:<16} {username} / {password}")
