import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from reviewapp.audit.sealer import seal_all
from reviewapp.audit.verify import checkpoint


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of the sealed head (sequence, hash, time) as one JSON "
        "line, to stdout or appended to a file. Ship it somewhere the database's users "
        "cannot write: `verify_audit --checkpoint FILE` then finds sealed rows removed "
        "since."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", metavar="FILE", help="append to FILE instead of stdout")
        parser.add_argument(
            "--no-seal", action="store_true", help="do not seal pending events first"
        )

    def handle(self, *args, output=None, no_seal=False, **options):
        if not no_seal:
            seal_all()
        line = json.dumps(checkpoint(timezone.now().isoformat()), sort_keys=True)
        if output:
            with open(output, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self.stderr.write(f"checkpoint appended to {output}")
        else:
            self.stdout.write(line)
