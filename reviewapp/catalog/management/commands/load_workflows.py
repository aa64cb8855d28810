from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviewapp.catalog.services import load_directory


class Command(BaseCommand):
    help = (
        "Load workflows/NAME.api.json with params/NAME.schema.json. Idempotent: a changed "
        "file becomes a new, published version; an unchanged one is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workflows", default=str(settings.WORKFLOWS_DIR))
        parser.add_argument("--params", default=str(settings.PARAMS_DIR))

    def handle(self, *args, **options):
        results = load_directory(Path(options["workflows"]), Path(options["params"]))
        failed = 0
        for result in results:
            if result.outcome == "error":
                failed += 1
                self.stderr.write(f"{result.slug}: refused")
                for problem in result.problems:
                    self.stderr.write(f"  - {problem}")
            else:
                self.stdout.write(f"{result.slug}: v{result.version.number} {result.outcome}")
                for note in result.notes:
                    self.stderr.write(f"  note: {note}")
        if failed:
            raise CommandError(f"{failed} workflow(s) refused; see above")
