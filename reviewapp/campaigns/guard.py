"""What stops a campaign by itself: the circuit breaker, the GPU budget and the canary.

The scheduler asks `check` before it releases a campaign's cells, so a broken prompt stops
consuming GPU within one round of the scheduler. Runs that fail count with the rejected:
a workflow that breaks on every cell stops the same way. A pause here is audited with its figures
(campaign.paused, actor "system") and shown on the campaign page; the operator resumes,
after changing the plan's limits if they wish, and the breaker then counts from there.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from reviewapp.audit import actions
from reviewapp.audit.services import record
from reviewapp.briefs.models import Generation
from reviewapp.campaigns import services, stats
from reviewapp.campaigns.models import Campaign


def check(campaign: Campaign) -> bool:
    """Pause `campaign` if one of its limits is reached; True when it did (or when the
    canary still waits for its review, so nothing more may be released now)."""
    generations = stats.lane_generations(campaign)
    if campaign.gpu_budget_s is not None:
        spent = stats.gpu_seconds(generations)
        if spent >= campaign.gpu_budget_s:
            services.pause(
                campaign,
                actor=None,
                reason=(f"budget: spent {spent:,.0f} of {campaign.gpu_budget_s:,.0f} GPU-seconds"),
                figures={"gpu_seconds": round(spent, 1), "budget_s": campaign.gpu_budget_s},
            )
            return True
    if campaign.in_canary:
        return _canary(campaign, generations)
    figures = stats.decided(generations, since=campaign.breaker_since)
    if (
        figures.finished >= campaign.breaker_min_decided
        and figures.bad_rate > campaign.breaker_max_reject_rate
    ):
        services.pause(
            campaign,
            actor=None,
            reason=(
                f"breaker: {_bad(figures)} ({figures.bad_rate:.0%}, the limit is "
                f"{campaign.breaker_max_reject_rate:.0%})"
            ),
            figures=_figures(figures),
            kind=Campaign.PauseKind.BREAKER,
        )
        return True
    return False


def _bad(figures: stats.Decided) -> str:
    """'3 of 5 cells rejected', '1 of 4 cells failed', '3 of 6 cells rejected or failed'."""
    what = " or ".join(
        word for word, n in (("rejected", figures.rejected), ("failed", figures.failed)) if n
    )
    return f"{figures.bad} of {figures.finished} cells {what or 'rejected'}"


def _figures(figures: stats.Decided) -> dict:
    return {"decided": figures.decided, "rejected": figures.rejected, "failed": figures.failed}


def canary_generations(campaign: Campaign):
    """The first runs of the canary's cells (regenerations are not part of it)."""
    return Generation.objects.filter(
        lane=campaign.lane, parent=None, brief__cell__index__lt=campaign.canary_size
    )


def _canary(campaign: Campaign, generations) -> bool:
    """Still waiting on the canary's review (True: release only canary cells), or passed
    (False: release the rest), or failed (paused, True)."""
    canary = canary_generations(campaign)
    if canary.exclude(status__in=Generation.TERMINAL).exists():
        return False  # the scheduler releases only canary cells while it runs
    figures = stats.decided(canary)
    if not figures.decided:
        reason = (
            f"canary: none of the {campaign.canary_size} canary cells gave an image to review "
            f"({figures.failed} failed); resume to run the rest anyway"
        )
    elif figures.bad_rate > campaign.breaker_max_reject_rate:
        reason = (
            f"canary: {_bad(figures)} ({figures.bad_rate:.0%}, the limit is "
            f"{campaign.breaker_max_reject_rate:.0%}); resume to run the rest anyway"
        )
    else:
        reason = ""
    if reason:
        services.pause(
            campaign,
            actor=None,
            reason=reason,
            figures=_figures(figures),
            kind=Campaign.PauseKind.CANARY,
        )
        return True
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.canary_passed_at is None:
            locked.canary_passed_at = campaign.canary_passed_at = timezone.now()
            locked.save(update_fields=["canary_passed_at"])
            record(
                actions.CAMPAIGN_CANARY_PASSED,
                actor=None,
                target=locked,
                workflow_slug=campaign.workflow.slug,
                changes={"decided": figures.decided, "rejected": figures.rejected},
            )
    return False
