"""The review queue as one person sees it through one filter.

The filter and sort travel in the URL (the queue page, an image's page, the forms on it
and "next"), so next / previous, the position ("3 of 19") and skipping all follow the
list the reviewer chose. Counts are capped (COUNT_CAP): the page never counts a
million rows to say "1,000+".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q

from reviewapp.accounts import permissions
from reviewapp.briefs.models import Generation, authored_q
from reviewapp.review import claims
from reviewapp.review.forms import ANY_STATUS, QueueFilterForm
from reviewapp.review.models import Decision

COUNT_CAP = 1000
PER_PAGE = 48


@dataclass(frozen=True)
class Count:
    """A count that stopped at a cap: `more` when there are more than `value`."""

    value: int
    more: bool = False

    def __str__(self) -> str:
        return f"{self.value:,}+" if self.more else f"{self.value:,}"


def capped_count(queryset, cap: int | None = None) -> Count:
    """COUNT over at most cap + 1 rows (a LIMIT in a subquery), however big the table."""
    cap = COUNT_CAP if cap is None else cap
    # Without ORDER BY: any cap + 1 rows will do, so the database picks the cheapest.
    n = queryset.order_by()[: cap + 1].count()
    return Count(min(n, cap), n > cap)


class CappedPaginator(Paginator):
    """A Paginator that counts only as far as a few pages past the one asked for (and
    at least COUNT_CAP rows): "Page 3 of 21+" instead of a COUNT over every row."""

    def __init__(
        self, object_list, per_page, *, page_hint: int = 1, cap: int | None = None, counted=None
    ):
        super().__init__(object_list, per_page)
        # What to count, when the listed rows carry annotations a count does not need.
        self.counted = object_list if counted is None else counted
        cap = COUNT_CAP if cap is None else cap
        # A page number past the table (or past any integer SQL takes) asks no more.
        self.limit = max(cap, per_page * (min(page_hint, 10**6) + 4))
        self.more = False

    @cached_property
    def count(self) -> int:
        counted = capped_count(self.counted, self.limit)
        self.more = counted.more
        return counted.value


@dataclass(frozen=True)
class Position:
    """Where an image stands in the filtered queue: index is None past the cap."""

    index: int | None
    total: Count

    def __str__(self) -> str:
        if self.index is None:
            return f"past the first {COUNT_CAP:,} of {self.total}"
        return f"{self.index:,} of {self.total}"


# The navigation parameters: not part of the filter a link carries on.
_NOT_CARRIED = {"page", "after"}


class ReviewQueue:
    """The queue through one filter (a QueueFilterForm bound to the request's GET)."""

    def __init__(self, user, query):
        self.user = user
        self.form = QueueFilterForm(query)
        self.valid = self.form.is_valid()

    @cached_property
    def items(self):
        """The filtered queue in its order; nothing when the filter is not understood
        (rather than a guess at what a half-understood filter meant)."""
        if not self.valid:
            return Generation.objects.none()
        form = self.form
        generations = Generation.objects.visible_to(self.user)
        # Awaiting review unless asked otherwise: the reviewer's work, and the
        # (status, created_at) index serves it without sorting the whole table.
        status = form.value("status") or Generation.Status.AWAITING_REVIEW
        if status != ANY_STATUS:
            generations = generations.filter(status=status)
        if workflow := form.value("workflow"):
            generations = generations.filter(brief__workflow_version__workflow__slug=workflow)
        if submitter := form.value("submitter"):
            generations = generations.filter(brief__created_by__username=submitter)
        return form.within_dates(generations).order_by(*self.order)

    @property
    def order(self) -> tuple[str, ...]:
        return self.form.order_by() if self.valid else ("created_at", "id")

    @property
    def descending(self) -> bool:
        return self.order[0].startswith("-")

    @cached_property
    def querystring(self) -> str:
        """The filter and sort as a query string (without page), for links and forms."""
        raw = self.form.raw()
        return urlencode([(k, v) for k, v in raw.items() if v and k not in _NOT_CARRIED])

    def carry(self, url: str) -> str:
        """`url` with the queue's filter and sort appended (the one place links get it)."""
        return f"{url}?{self.querystring}" if self.querystring else url

    def after_q(self, generation: Generation) -> Q:
        """Items after `generation` in the queue's order (ties broken by id)."""
        return self._beyond(generation, later=not self.descending)

    def before_q(self, generation: Generation) -> Q:
        return self._beyond(generation, later=self.descending)

    @staticmethod
    def _beyond(generation: Generation, *, later: bool) -> Q:
        """created_at past the generation's, or equal with the id past its id: written as
        a range on created_at (minus the ties on the wrong side), which an index on
        (status, created_at) serves; an OR of the two cases makes the database scan."""
        op = "gte" if later else "lte"
        wrong_side = "lte" if later else "gte"
        return Q(**{f"created_at__{op}": generation.created_at}) & ~Q(
            **{"created_at": generation.created_at, f"id__{wrong_side}": generation.pk}
        )

    def _not_for_me(self) -> Q:
        """Images awaiting review that this reviewer is not sent to: another reviewer
        holds it, they are an author of it (four eyes), or their approval stands."""
        mine = Decision.objects.filter(
            generation=OuterRef("pk"),
            actor=self.user,
            action=Decision.Action.APPROVE,
            reversed_by__isnull=True,
        )
        blocked = Q(claims.held_by_others(self.user)) | Q(Exists(mine))
        if not settings.ALLOW_SELF_REVIEW:
            blocked |= authored_q(self.user)
        return Q(status=Generation.Status.AWAITING_REVIEW) & blocked

    def upcoming(self, current: Generation | None = None, limit: int = 20) -> list[Generation]:
        """The next items for this person after `current`, wrapping round to the start:
        a reviewer is not sent to what they cannot or need not decide (_not_for_me)."""
        items = self.items
        if permissions.can_review(self.user):
            items = items.exclude(self._not_for_me())
        if current is None:
            return list(items[:limit])
        items = items.exclude(pk=current.pk)
        found = list(items.filter(self.after_q(current))[:limit])
        if len(found) < limit:
            found += list(items.filter(self.before_q(current))[: limit - len(found)])
        return found

    def next_for(self, current: Generation | None) -> Generation | None:
        upcoming = self.upcoming(current, limit=1)
        return upcoming[0] if upcoming else None

    def previous(self, current: Generation) -> Generation | None:
        """The item just before `current` in the filtered list (whoever holds it)."""
        order = tuple(f[1:] if f.startswith("-") else f"-{f}" for f in self.order)
        return self.items.filter(self.before_q(current)).order_by(*order).first()

    def position(self, current: Generation) -> Position | None:
        """ "3 of 19"; None when `current` is not in this queue (e.g. just decided)."""
        if not self.items.filter(pk=current.pk).exists():
            return None
        before = capped_count(self.items.filter(self.before_q(current)))
        return Position(None if before.more else before.value + 1, capped_count(self.items))

    def take_next(self, current: Generation | None) -> Generation | None:
        """The next item for this person, claimed for them when it awaits their review.

        Candidates another reviewer claims between the query and the claim are passed
        over, so two reviewers draining one queue are never sent to the same image."""
        reviewer = permissions.can_review(self.user)
        for candidate in self.upcoming(current):
            if not reviewer or candidate.status not in Generation.DECIDABLE:
                return candidate
            claim = claims.open_for_review(candidate, actor=self.user)
            if claim is not None and claim.holder_id == self.user.pk:
                return candidate
        return None
