"""GET filters parsed by a Form: a bad value is a message naming the field, not a 500."""

from __future__ import annotations

from django import forms


def form_problems(form: forms.Form) -> list[str]:
    """One readable line per invalid field, e.g. "From (since): Enter a valid date."."""
    lines = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = f"{field.label} ({name})" if field and field.label else name
        lines.extend(f"{label}: {error}" for error in errors)
    return lines


# Django's default names the rejected value; the request could hold anything.
INVALID_CHOICE = {"invalid_choice": "is not one of the offered choices"}


class FilterForm(forms.Form):
    """Base of the list pages' filter forms. Every field is optional; `page` is shared.

    Bound to request.GET; a page shows `problems()` and nothing that a half-understood
    filter would select (an export must not widen to the whole table on a typo).
    """

    page = forms.IntegerField(required=False, min_value=1, label="Page")

    def problems(self) -> list[str]:
        return form_problems(self)

    def page_number(self) -> int:
        """The page asked for; the first when the filters are not understood."""
        return (self.is_valid() and self.cleaned_data.get("page")) or 1

    def value(self, name: str):
        """The cleaned value, or None when absent; only after is_valid()."""
        return self.cleaned_data.get(name) or None

    def raw(self) -> dict[str, str]:
        """What was asked, for re-filling the form on the page (valid or not)."""
        return {name: self.data.get(name, "") for name in self.fields}


class DateRangeFilterForm(FilterForm):
    """since/until as calendar days (inclusive); an impossible date is a field error."""

    since = forms.DateField(required=False, label="From")
    until = forms.DateField(required=False, label="To")

    def within_dates(self, queryset, field: str = "created_at"):
        """`queryset` narrowed to the days asked for, by the date of `field`."""
        if since := self.value("since"):
            queryset = queryset.filter(**{f"{field}__date__gte": since})
        if until := self.value("until"):
            queryset = queryset.filter(**{f"{field}__date__lte": until})
        return queryset

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "is before From; swap the two dates")
        return cleaned
