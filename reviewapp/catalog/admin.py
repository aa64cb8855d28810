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
    list_display = ("slug", "title", "queue", "created_at")
    fields = ("slug", "title", "description", "queue", "embed_generation_metadata")
    readonly_fields = ("slug",)
    inlines = [WorkflowVersionInline]
