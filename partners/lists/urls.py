"""The list pages, under lists/."""

from django.urls import path

from partners.lists import views

urlpatterns = [
    path("", views.list_index, name="list-index"),
    path("new/", views.list_create, name="list-create"),
    path("add/", views.list_add_cases, name="list-add-cases"),
    path("waiting/", views.list_waiting, name="list-waiting"),
    path("<int:list_id>/", views.list_detail, name="list-detail"),
    path("<int:list_id>/references/", views.list_add_references, name="list-add-references"),
    path("<int:list_id>/remove/", views.list_remove, name="list-remove"),
    path("<int:list_id>/send/", views.list_send, name="list-send"),
    path("<int:list_id>/close/", views.list_close, name="list-close"),
    path("<int:list_id>/items/<str:reference>/", views.list_item, name="list-item"),
    path("<int:list_id>/export.<str:fmt>", views.list_export, name="list-export"),
    path("<int:list_id>/upload/", views.list_upload, name="list-upload"),
    path("<int:list_id>/sheets/<uuid:key>/", views.list_sheet_job, name="list-sheet-job"),
    path("<int:list_id>/sheets/<uuid:key>/progress/", views.list_sheet_progress, name="list-sheet-progress"),
    path("<int:list_id>/sheets/<uuid:key>/confirm/", views.list_sheet_confirm, name="list-sheet-confirm"),
    path("<int:list_id>/sheets/<uuid:key>/cancel/", views.list_sheet_cancel, name="list-sheet-cancel"),
]
