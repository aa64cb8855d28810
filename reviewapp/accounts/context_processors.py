from reviewapp.accounts import permissions


def roles(request):
    user = request.user
    return {
        "can_submit": permissions.can_submit(user),
        "can_review": permissions.can_review(user),
        "can_manage_workflows": permissions.can_manage_workflows(user),
        "can_view_audit": permissions.can_view_audit(user),
        "can_view_queue": permissions.can_view_queue(user),
        "user_roles": sorted(permissions.role_names(user)),
    }
