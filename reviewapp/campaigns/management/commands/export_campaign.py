"""Write a campaign's approved set, as the page's download does, to a file."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.campaigns import export
from reviewapp.campaigns.models import Campaign


class Command(BaseCommand):
    help = (
        "Write the approved images of campaign ID (settled approvals, each cell's latest), "
        "their renditions and manifest.json / manifest.csv to a ZIP file."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int)
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--out", help="the ZIP file to write")
        where.add_argument(
            "--to-storage",
            metavar="NAME",
            help="write it to the media storage instead (the S3 bucket when S3_BUCKET is "
            "set), e.g. exports/spring.zip",
        )

    def handle(self, *args, **options):
        campaign = (
            Campaign.objects.select_related("workflow_version__workflow")
            .filter(pk=options["campaign"])
            .first()
        )
        if campaign is None:
            raise CommandError(f"no campaign {options['campaign']}")
        written = 0
        if options["to_storage"]:
            target, written = export.save_to_storage(campaign, options["to_storage"])
            to = "storage"
        else:
            target, to = options["out"], "file"
            try:
                with open(target, "wb") as out:
                    for piece in export.stream(campaign):
                        out.write(piece)
                        written += len(piece)
            except OSError as exc:
                raise CommandError(f"{target}: {exc.strerror}") from None
        record(
            actions.CAMPAIGN_EXPORTED,
            actor=None,
            target=campaign,
            workflow_slug=campaign.workflow.slug,
            changes={"to": to, "name": target, "bytes": written},
        )
        waiting = export.not_yet_settled(campaign)
        note = f" ({waiting} approvals are too recent and not in it yet)" if waiting else ""
        self.stdout.write(f"wrote {target}: {written:,} bytes{note}")
