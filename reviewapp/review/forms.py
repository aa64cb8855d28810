"""Forms of the review pages: the queue's filters and the bulk decision."""

from __future__ import annotations

from django import forms

from reviewapp.briefs.models import Generation
from reviewapp.lib.filters import INVALID_CHOICE, DateRangeFilterForm, form_problems

QUEUE_SORTS = {
    "oldest": ("created_at", "id"),
    "newest": ("-created_at", "-id"),
}
ANY_STATUS = "all"
# Generation ids are BigAutoField: anything larger cannot be one (and the database
# would fail on it rather than find nothing).
ID_MAX = 2**63 - 1


class QueueFilterForm(DateRangeFilterForm):
    workflow = forms.CharField(required=False, max_length=100, label="Workflow")
    status = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "Awaiting review"), *Generation.Status.choices, (ANY_STATUS, "Any status")],
        error_messages=INVALID_CHOICE,
    )
    submitter = forms.CharField(required=False, max_length=150, label="Submitter")
    sort = forms.ChoiceField(
        required=False,
        label="Sort",
        choices=[("", "Oldest first"), ("oldest", "Oldest first"), ("newest", "Newest first")],
        error_messages=INVALID_CHOICE,
    )

    # "Next" from this image: where to look on from (and whose claim to give back).
    after = forms.IntegerField(required=False, min_value=1, max_value=ID_MAX, label="After")

    def order_by(self) -> tuple[str, ...]:
        return QUEUE_SORTS[self.cleaned_data.get("sort") or "oldest"]

    def is_filtered(self) -> bool:
        return any(self.value(k) for k in ("workflow", "status", "submitter", "since", "until"))


class IdsField(forms.Field):
    """Several positive generation ids (checkboxes named alike)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one image.",
        "invalid": "an image is named by its number (1, 2, 3 …); reload the queue",
    }

    def to_python(self, value) -> list[int]:
        ids = []
        for raw in value or []:
            # isdigit() alone accepts "²"; the length bound keeps int() cheap.
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not (
                0 < int(raw) <= ID_MAX
            ):
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            ids.append(int(raw))
        return ids

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class BulkDecisionForm(forms.Form):
    """Which images and what to do. The reason and tags are judged by the service
    (reviewapp.review.reasons), the one place for single and bulk rejects alike."""

    ids = IdsField(label="Images")
    action = forms.ChoiceField(
        label="Action",
        choices=[("approve", "Approve"), ("reject", "Reject")],
        error_messages={"required": "choose approve or reject", **INVALID_CHOICE},
    )

    def problems(self) -> list[str]:
        return form_problems(self)
