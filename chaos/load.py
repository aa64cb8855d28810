"""What a chaos run submits and decides, through the app's own services: single briefs,
campaigns (their cells held and released by the scheduler), regenerations, and a
campaign paused and resumed while everything else breaks."""

from __future__ import annotations

import collections
import re

from chaos.config import Config, log


def normalise(error: str) -> str:
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", error)
    text = re.sub(r"127\.0\.0\.1:\d+", "<sim>", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:200]


class Load:
    def __init__(self, cfg: Config, rng, operator, reviewer):
        self.cfg = cfg
        self.rng = rng
        self.operator = operator
        self.reviewer = reviewer
        self.submitted = 0  # generations asked for: single briefs plus campaign cells
        self.singles = 0
        self.campaigns: list = []
        self.regenerated = 0
        self.regenerate_target = round(cfg.generations * cfg.regenerate_share)
        self.submit_errors: collections.Counter = collections.Counter()
        self.paused: list[int] = []
        self.held_when_paused = 0
        self._submitted_last = False
        self.resumed: list[int] = []

    def _params(self) -> dict:
        sizes = (64, 96, 128, 192, 256)
        return {
            "color": self.rng.randrange(0, 1 << 24),
            "width": self.rng.choice(sizes),
            "height": self.rng.choice(sizes),
            "blur_radius": self.rng.randint(1, 3),
        }

    def submit_some(self, count: int) -> None:
        """A campaign while the campaign share is not reached, and up to `count` single
        briefs while theirs is not (the rounding goes to single briefs)."""
        cfg = self.cfg
        cells = cfg.campaign_cells()
        in_campaigns = sum(c.cell_count for c in self.campaigns)
        if cells and in_campaigns + cells <= cfg.generations * cfg.campaign_share:
            self._campaign(cells)
            in_campaigns += cells if self._submitted_last else 0
        campaigns_left = cells and in_campaigns + cells <= cfg.generations * cfg.campaign_share
        singles_left = cfg.generations - self.submitted
        if campaigns_left:
            singles_left -= round(cfg.generations * cfg.campaign_share) - in_campaigns
        for _ in range(max(0, min(count, singles_left))):
            self._single()

    def _guarded(self, what: str, submit) -> bool:
        from django.db import DatabaseError

        try:
            submit()
        except DatabaseError as exc:
            # What the operator's request would have answered (a 500): nothing was
            # stored. Counted and reported; the operator submits again next round.
            self.submit_errors[normalise(str(exc).splitlines()[0])] += 1
            log(self.cfg, f"{what} failed: {exc!r}")
            return False
        return True

    def _single(self) -> None:
        from reviewapp.briefs import services
        from reviewapp.catalog.models import WorkflowVersion

        version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
        params = self._params()
        if self._guarded(
            "submit_brief", lambda: services.submit_brief(version, params, actor=self.operator)
        ):
            self.submitted += 1
            self.singles += 1

    def _campaign(self, cells: int) -> None:
        from reviewapp.campaigns import services
        from reviewapp.catalog.models import WorkflowVersion

        version = WorkflowVersion.objects.get(workflow__slug="color_swatch", status="published")
        rows = [{"params": self._params(), "metadata": {"n": str(i)}} for i in range(cells)]
        plan = {"kind": "rows", "columns": ["color", "width", "height", "blur_radius", "n"],
                "rows": rows}  # fmt: skip
        # Its breaker never trips here (no cell is rejected but the regenerated).
        options = services.Options(
            title=f"chaos {len(self.campaigns) + 1}", breaker_max_reject_rate=1.0
        )

        def submit():
            draft = services.create_draft(version, plan, actor=self.operator, options=options)
            self.campaigns.append(services.submit(draft, actor=self.operator))

        self._submitted_last = self._guarded("submit_campaign", submit)
        if self._submitted_last:
            self.submitted += cells
            log(self.cfg, f"campaign {self.campaigns[-1].pk}: {cells} cells")

    def regenerate_some(self) -> None:
        from reviewapp.briefs.models import Generation
        from reviewapp.review import services

        if self.regenerated >= self.regenerate_target:
            return
        candidates = list(
            Generation.objects.filter(
                status=Generation.Status.AWAITING_REVIEW, parent__isnull=True, children__isnull=True
            ).order_by("?")[: self.regenerate_target - self.regenerated]
        )
        for generation in candidates:
            if self.rng.random() < 0.5:
                continue
            services.regenerate(generation, actor=self.reviewer)
            self.regenerated += 1

    def pause_one(self) -> str:
        """Pause the running campaign with the most cells still held."""
        from reviewapp.briefs.models import Generation
        from reviewapp.campaigns import services
        from reviewapp.campaigns.models import Campaign

        running = list(Campaign.objects.filter(status=Campaign.Status.RUNNING, pk__in=self.ids()))
        if not running:
            return "no running campaign to pause"
        held = {
            c.pk: Generation.objects.filter(lane=c.lane, status=Generation.Status.HELD).count()
            for c in running
        }
        campaign = max(running, key=lambda c: held[c.pk])
        services.pause(campaign, actor=self.operator, reason="chaos: paused mid-run")
        self.paused.append(campaign.pk)
        self.held_when_paused = held[campaign.pk]
        return f"campaign {campaign.pk} paused ({held[campaign.pk]} held)"

    def resume_paused(self) -> str:
        from reviewapp.campaigns import services
        from reviewapp.campaigns.models import Campaign

        done = []
        for campaign in Campaign.objects.filter(status=Campaign.Status.PAUSED, pk__in=self.ids()):
            services.resume(campaign, actor=self.operator)
            self.resumed.append(campaign.pk)
            done.append(campaign.pk)
        return f"campaigns {done} resumed"

    def ids(self) -> list[int]:
        return [c.pk for c in self.campaigns]

    def finished(self) -> bool:
        return self.submitted >= self.cfg.generations and self.regenerated >= self.regenerate_target
