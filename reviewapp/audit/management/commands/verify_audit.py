from django.core.management.base import BaseCommand, CommandError

from reviewapp.audit.verify import read_checkpoints, verify


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's chain and MACs and name the first problem. With "
        "--checkpoint, also check that every sealed head the file records is still there."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            metavar="FILE",
            help="a file written by audit_checkpoint (JSON lines); every line is checked",
        )

    def handle(self, *args, checkpoint=None, **options):
        try:
            checkpoints = read_checkpoints(checkpoint) if checkpoint else []
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read checkpoints: {exc}") from None
        report = verify(checkpoints)
        for note in report.notes:
            self.stdout.write(note)
        if not report.intact:
            raise CommandError("audit trail NOT intact: " + "; ".join(report.problems))
        against = f", {len(checkpoints)} checkpoint(s) matched" if checkpoints else ""
        self.stdout.write(
            f"audit trail intact: {report.sealed} sealed events (head #{report.head_seq}), "
            f"{report.unsealed} not yet sealed{against}"
        )
