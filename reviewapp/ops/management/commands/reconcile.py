import logging
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from reviewapp.briefs.worker.reconcile import reconcile

logger = logging.getLogger("reviewapp.reconcile")


class Command(BaseCommand):
    help = (
        "Find generations whose job Redis lost, whose worker died or whose deadline "
        "passed, and move them on (enqueue again, or fail with the reason)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=0, help="repeat every N seconds (0: run once)"
        )

    def handle(self, *args, **options):
        while True:
            try:
                report = reconcile()
            except Exception:
                if not options["every"]:
                    raise
                # Redis or the database may be down for a moment; try again next round.
                logger.exception("reconcile round failed")
            else:
                if report:
                    self.stdout.write(
                        f"enqueued {report.enqueued} replaced {report.replaced} "
                        f"expired {report.expired}"
                    )
            finally:
                close_old_connections()
            if not options["every"]:
                return
            time.sleep(options["every"])
