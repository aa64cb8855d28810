from django import forms
from django.contrib import admin

from reviewapp.catalog.models import Workflow, WorkflowVersion
from reviewapp.lib.pools import pool_names, unknown_pool_message


class WorkflowAdminForm(forms.ModelForm):
    """The pool is one of the configured pools. A workflow whose pool was unconfigured since
    (COMFYUI_POOLS changed) shows that pool, marked, and cannot be saved until it is moved:
    a plain choice list would preselect another pool and move it on the next save."""

    # A select that still hands any posted value to clean_pool, which names the choices.
    pool = forms.CharField(
        widget=forms.Select, help_text="The backends (and RQ queue) that run this workflow."
    )

    class Meta:
        model = Workflow
        fields = ("pool",)  # WorkflowAdmin.fields adds the rest

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in pool_names()]
        current = self.instance.pool if self.instance.pk else None
        if current and current not in pool_names():
            choices.append((current, f"{current} (not configured)"))
        self.fields["pool"].widget.choices = choices

    def clean_pool(self):
        pool = self.cleaned_data["pool"]
        if pool not in pool_names():
            message = unknown_pool_message(pool)
            raise forms.ValidationError(f"{message[:1].upper()}{message[1:]}.")
        return pool


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ("number", "status", "checksum", "source", "published_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    """Workflow settings; every change is audited (catalog.signals)."""

    form = WorkflowAdminForm
    list_display = ("slug", "title", "pool", "required_approvals", "created_at")
    fields = (
        "slug",
        "title",
        "description",
        "pool",
        "required_approvals",
        "queue_timeout_s",
        "run_timeout_s",
        "embed_generation_metadata",
        "campaign_breaker_min_decided",
        "campaign_breaker_max_reject_rate",
    )
    readonly_fields = ("slug",)
    inlines = [WorkflowVersionInline]

    def has_add_permission(self, request):
        # A workflow comes from an imported version (manage/workflows/import/ or
        # load_workflows), which records its creation.
        return False
