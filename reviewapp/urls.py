from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import path

from reviewapp.accounts import permissions
from reviewapp.accounts.views import SignInView, login_only
from reviewapp.audit import views as audit_views
from reviewapp.briefs import views as brief_views
from reviewapp.campaigns import matrix_views as campaign_matrix
from reviewapp.campaigns import views as campaign_views
from reviewapp.catalog import views as catalog_views
from reviewapp.review import decide as review_decide
from reviewapp.review import views as review_views


@login_only
def home(request):
    if permissions.can_review(request.user):
        return redirect("review_queue")
    if permissions.can_submit(request.user):
        return redirect("workflow_list")
    if permissions.can_manage_workflows(request.user):
        return redirect("manage_list")
    if permissions.can_view_audit(request.user):
        return redirect("audit_list")
    return redirect("brief_list")


urlpatterns = [
    path("", home, name="home"),
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workflows/", catalog_views.workflow_list, name="workflow_list"),
    path("workflows/<slug:slug>/new/", brief_views.brief_new, name="brief_new"),
    path("workflows/<slug:slug>/campaign/", campaign_views.campaign_new, name="campaign_new"),
    path("campaigns/", campaign_views.campaign_list, name="campaign_list"),
    path("campaigns/<int:pk>/", campaign_views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/status.json", campaign_views.campaign_status, name="campaign_status"),
    path("campaigns/<int:pk>/matrix/", campaign_matrix.matrix, name="campaign_matrix"),
    path(
        "campaigns/<int:pk>/matrix/cells.json",
        campaign_matrix.matrix_cells,
        name="campaign_matrix_cells",
    ),
    path(
        "campaigns/<int:pk>/matrix/decide/",
        campaign_matrix.matrix_decide,
        name="campaign_matrix_decide",
    ),
    path("campaigns/<int:pk>/approved.zip", campaign_views.campaign_export, name="campaign_export"),
    path("campaigns/<int:pk>/submit/", campaign_views.campaign_submit, name="campaign_submit"),
    path("campaigns/<int:pk>/pause/", campaign_views.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:pk>/resume/", campaign_views.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:pk>/cancel/", campaign_views.campaign_cancel, name="campaign_cancel"),
    path("campaigns/<int:pk>/limits/", campaign_views.campaign_limits, name="campaign_limits"),
    path("briefs/", brief_views.brief_list, name="brief_list"),
    path("briefs/<int:pk>/", brief_views.brief_detail, name="brief_detail"),
    path("briefs/<int:pk>/status.json", brief_views.brief_status, name="brief_status"),
    path("assets/<int:pk>/", brief_views.asset_file, name="asset_file"),
    path("assets/<int:pk>/thumb/", brief_views.asset_thumbnail, name="asset_thumbnail"),
    path("review/", review_views.queue, name="review_queue"),
    path("review/next/", review_views.review_next, name="review_next"),
    path("review/bulk/", review_decide.bulk_decide, name="review_bulk"),
    path("generations/<int:pk>/", review_views.generation_detail, name="generation_detail"),
    path("generations/<int:pk>/cancel/", brief_views.generation_cancel, name="generation_cancel"),
    path("generations/<int:pk>/approve/", review_decide.approve, name="generation_approve"),
    path("generations/<int:pk>/reject/", review_decide.reject, name="generation_reject"),
    path(
        "generations/<int:pk>/regenerate/", review_decide.regenerate, name="generation_regenerate"
    ),
    path(
        "generations/<int:pk>/regenerate/edit/",
        review_decide.regenerate_edit,
        name="generation_regenerate_edit",
    ),
    path("generations/<int:pk>/claim/", review_decide.claim, name="generation_claim"),
    path("generations/<int:pk>/release/", review_decide.release, name="generation_release"),
    path("decisions/<int:pk>/undo/", review_decide.undo, name="decision_undo"),
    path(
        "generations/<int:pk>/compare/<int:other>/",
        review_views.compare,
        name="generation_compare",
    ),
    path("manage/workflows/", catalog_views.manage_list, name="manage_list"),
    path("manage/workflows/import/", catalog_views.manage_import, name="manage_import"),
    path("manage/workflows/<slug:slug>/", catalog_views.manage_workflow, name="manage_workflow"),
    path(
        "manage/workflows/<slug:slug>/v<int:number>/publish/",
        catalog_views.version_publish,
        name="version_publish",
    ),
    path(
        "manage/workflows/<slug:slug>/v<int:number>/retire/",
        catalog_views.version_retire,
        name="version_retire",
    ),
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("admin/", admin.site.urls),
]
