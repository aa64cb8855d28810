import logging

from django.core.management.base import BaseCommand

from reviewapp.briefs.worker.reconcile import reconcile
from reviewapp.lib.rounds import repeat

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
        for report in repeat(reconcile, every=options["every"], logger=logger, name="reconcile"):
            if report:
                self.stdout.write(
                    f"enqueued {report.enqueued} replaced {report.replaced} "
                    f"expired {report.expired}"
                )
