"""Submit a campaign from a matrix file or a row file, as a batch user would."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from reviewapp.briefs.services import NotPublished
from reviewapp.campaigns import inputs, plans, services
from reviewapp.catalog.models import Workflow


class Command(BaseCommand):
    help = (
        "Validate and submit a campaign: a matrix (JSON: axes, fixed, template) or rows "
        "(CSV or JSONL, one brief per row). Image values name files beside the plan, or in "
        "the --images ZIP. Prints the campaign id and cell count; exits non-zero with "
        "every row or cell and field that is wrong, having submitted nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workflow", required=True, help="workflow slug")
        parser.add_argument("--user", required=True, help="the operator submitting it")
        plan = parser.add_mutually_exclusive_group(required=True)
        plan.add_argument("--matrix", type=Path, help="a matrix file (JSON)")
        plan.add_argument("--rows", type=Path, help="a row file (.csv, .jsonl)")
        parser.add_argument("--images", type=Path, help="a ZIP of the images the plan names")
        parser.add_argument("--title", default="")
        parser.add_argument("--canary", type=int, default=None, help="cells to run first")
        parser.add_argument(
            "--draft", action="store_true", help="check and keep as a draft; do not submit"
        )

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}")
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"no workflow {options['workflow']!r}")
        version = workflow.published_version
        if version is None:
            raise CommandError(f"{workflow.slug} has no published version")
        source = options["matrix"] or options["rows"]
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise CommandError(f"{source}: {exc.strerror}") from None
        try:
            campaign = self._submit(version, source, data, user, options)
        except plans.PlanInvalid as exc:
            lines = "\n".join(f"  {p}" for p in exc.problems)
            more = exc.total - len(exc.problems)
            tail = f"\n  and {more} more" if more > 0 else ""
            raise CommandError(f"{source}: nothing was submitted:\n{lines}{tail}") from None
        except (PermissionDenied, NotPublished) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"campaign {campaign.pk}: {campaign.cell_count} cells, {campaign.status}")

    def _submit(self, version, source: Path, data: bytes, user, options):
        contract = version.contract()
        if options["images"]:
            try:
                named = inputs.ZipImages(options["images"].read_bytes(), options["images"].name)
            except OSError as exc:
                raise CommandError(f"{options['images']}: {exc.strerror}") from None
            available = set(named)
        else:
            beside = inputs.FilesBeside(source.parent)
            available, named = beside, None
        settings_from_file = {}
        if options["matrix"]:
            try:
                spec = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise plans.PlanInvalid([f"not a JSON file ({exc})"]) from None
            plan = plans.matrix_plan(spec, contract, files=available)
            settings_from_file = spec
        else:
            plan = plans.rows_plan(data, source.name, contract, files=available)
        referenced = plans.referenced_files(plan)
        if named is None:
            named = available.read(referenced)
        prepared = inputs.prepare(named, referenced)
        options_ = services.Options.from_spec(settings_from_file)
        options_.title = options["title"] or options_.title or source.stem
        if options["canary"] is not None:
            options_.canary_size = options["canary"]
        campaign = services.create_draft(
            version, plan, actor=user, options=options_, files=prepared
        )
        if not options["draft"]:
            campaign = services.submit(campaign, actor=user)
        return campaign
