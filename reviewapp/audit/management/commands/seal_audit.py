import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from reviewapp.audit.sealer import seal_all


class Command(BaseCommand):
    help = (
        "Seal committed audit events (sequence and HMAC chain). Once, or every N seconds "
        "with --every. One sealer works at a time; others wait their turn."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, metavar="SECONDS", help="keep sealing")
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, *args, every=None, batch=5000, **options):
        while True:
            sealed = seal_all(batch)
            if every is None:
                self.stdout.write(f"sealed {sealed} events")
                return
            if sealed and options["verbosity"] > 1:
                self.stdout.write(f"sealed {sealed} events")
            close_old_connections()
            time.sleep(every)
