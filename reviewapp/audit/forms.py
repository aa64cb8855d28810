"""The audit trail's filters, shared by the list and the CSV export."""

from django import forms

from reviewapp.lib.filters import DateRangeFilterForm


class AuditFilterForm(DateRangeFilterForm):
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    action = forms.CharField(required=False, max_length=64, label="Action")
    workflow = forms.CharField(required=False, max_length=100, label="Workflow")
