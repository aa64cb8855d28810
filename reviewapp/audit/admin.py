from django.contrib import admin

from reviewapp.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only."""

    list_display = ("created_at", "actor_name", "action", "target_type", "target_id")
    list_filter = ("action",)
    search_fields = ("actor_name", "target_id", "workflow_slug")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
