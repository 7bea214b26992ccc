"""The caseworker pages (see casework.views for who may see what)."""

from django.urls import path

from casework import views

urlpatterns = [
    path("", views.home, name="home"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/export.csv", views.case_export, name="case-export"),
    path("cases/new/", views.case_create, name="case-create"),
    # Before the case pages, or "share" would be read as a reference.
    path("cases/share/", views.case_share_bulk, name="case-share-bulk"),
    path("cases/<str:reference>/", views.case_detail, name="case-detail"),
    path("cases/<str:reference>/edit/", views.case_edit, name="case-edit"),
    path("cases/<str:reference>/status/", views.case_status, name="case-status"),
    path("cases/<str:reference>/shares/", views.case_share, name="case-share"),
    path("cases/<str:reference>/shares/<int:share_id>/revoke/", views.case_share_revoke, name="case-share-revoke"),
    path("cases/<str:reference>/access/", views.case_access_log, name="case-access-log"),
    path("institutions/", views.institution_list, name="institution-list"),
    path("institutions/<slug:code>/", views.institution_detail, name="institution-detail"),
]
