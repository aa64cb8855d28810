from django.contrib import admin

from reviewapp.catalog.models import Workflow, WorkflowVersion


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

    list_display = ("slug", "title", "queue", "required_approvals", "created_at")
    fields = (
        "slug",
        "title",
        "description",
        "queue",
        "required_approvals",
        "queue_timeout_s",
        "run_timeout_s",
        "embed_generation_metadata",
    )
    readonly_fields = ("slug",)
    inlines = [WorkflowVersionInline]

    def has_add_permission(self, request):
        # A workflow comes from an imported version (manage/workflows/import/ or
        # load_workflows), which records its creation.
        return False
