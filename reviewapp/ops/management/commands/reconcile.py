import logging
import time

from django.core.management.base import BaseCommand

from reviewapp.briefs.services import requeue_orphans

logger = logging.getLogger("reviewapp.reconcile")


class Command(BaseCommand):
    help = "Enqueue again generations the database has as queued but Redis has lost."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=0, help="repeat every N seconds (0: run once)"
        )
        parser.add_argument("--older-than", type=float, default=60.0)

    def handle(self, *args, **options):
        while True:
            try:
                requeued = requeue_orphans(older_than_s=options["older_than"])
            except Exception:
                if not options["every"]:
                    raise
                # Redis or the database may be down for a moment; try again next round.
                logger.exception("reconcile round failed")
                requeued = []
            if requeued:
                self.stdout.write(f"re-enqueued generations {requeued}")
            if not options["every"]:
                return
            time.sleep(options["every"])
