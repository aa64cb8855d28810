import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from reviewapp.campaigns.scheduler import tick
from reviewapp.lib.rounds import repeat

logger = logging.getLogger("reviewapp.campaigns")


class Command(BaseCommand):
    help = (
        "Release held campaign cells into their pool's queue, campaigns in turn, and pause "
        "campaigns whose breaker, budget or canary says so."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            default=None,
            help="repeat every N seconds (default CAMPAIGN_SCHEDULER_EVERY_S; 0: once)",
        )

    def handle(self, *args, **options):
        every = options["every"]
        if every is None:
            every = settings.CAMPAIGN_SCHEDULER_EVERY_S
        for released in repeat(tick, every=every, logger=logger, name="scheduler"):
            if released and options["verbosity"] > 1:
                self.stdout.write(f"released {released}")
