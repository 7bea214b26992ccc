"""The caseworker pages (see casework.views for who may see what)."""

from django.urls import path

from casework import import_views, views, work_views

urlpatterns = [
    path("", views.home, name="home"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/export.csv", views.case_export, name="case-export"),
    path("cases/new/", views.case_create, name="case-create"),
    path("cases/filters/", work_views.filter_save, name="case-filter-save"),
    path("cases/filters/<int:filter_id>/delete/", work_views.filter_delete, name="case-filter-delete"),
    path("cases/<str:reference>/", views.case_detail, name="case-detail"),
    path("cases/<str:reference>/edit/", views.case_edit, name="case-edit"),
    path("cases/<str:reference>/status/", views.case_status, name="case-status"),
    path("cases/<str:reference>/access/", views.case_access_log, name="case-access-log"),
    path("cases/<str:reference>/summary/", work_views.case_summary, name="case-summary"),
    path("cases/<str:reference>/follow-ups/", work_views.task_create, name="task-create"),
    path("imports/", import_views.import_start, name="import-start"),
    path("imports/<uuid:key>/", import_views.import_job, name="import-job"),
    path("imports/<uuid:key>/columns/", import_views.import_columns, name="import-columns"),
    path("imports/<uuid:key>/progress/", import_views.import_progress, name="import-progress"),
    path("imports/<uuid:key>/confirm/", import_views.import_confirm, name="import-confirm"),
    path("imports/<uuid:key>/cancel/", import_views.import_cancel, name="import-cancel"),
    path("imports/<uuid:key>/problems.txt", import_views.import_problems, name="import-problems"),
    path("imports/<uuid:key>/references.csv", import_views.import_references, name="import-references"),
    path("follow-ups/", work_views.my_follow_ups, name="my-follow-ups"),
    path("follow-ups/<int:task_id>/done/", work_views.task_done, name="task-done"),
    path("team/", work_views.team, name="team"),
    path("notices/", work_views.notice_list, name="notices"),
    path("notices/read/", work_views.notices_read, name="notices-read"),
    path("team/rules/", work_views.rules, name="team-rules"),
    path("institutions/", views.institution_list, name="institution-list"),
    path("institutions/<slug:code>/", views.institution_detail, name="institution-detail"),
]
