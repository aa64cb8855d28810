from django.core.management.base import BaseCommand, CommandError

from reviewapp.audit.services import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain and name the first broken row."

    def handle(self, *args, **options):
        checked, bad, why = verify_chain()
        if why:
            where = (
                f"event #{bad.pk} ({bad.action} at {bad.created_at:%Y-%m-%d %H:%M:%S})"
                if bad
                else "the end of the chain"
            )
            raise CommandError(
                f"audit chain broken at {where}: {why} ({checked} events verified before it)"
            )
        self.stdout.write(f"audit chain intact: {checked} events")
