from django.urls import path

from reports import release_views, views

urlpatterns = [
    path("figures/", views.figures_page, name="figures"),
    path("figures/snapshots/", views.request_snapshot, name="figures-request"),
    path("figures/snapshots/<int:snapshot_id>/status/", views.snapshot_status, name="figures-snapshot-status"),
    path("figures/export/<str:fmt_name>/", views.export, name="figures-export"),
    path("figures/releases/", release_views.release_list, name="releases"),
    path("figures/releases/prepare/", release_views.release_prepare, name="release-prepare"),
    path("figures/releases/<int:number>/", release_views.release_detail, name="release-detail"),
    path("figures/releases/<int:number>/approve/", release_views.release_approve, name="release-approve"),
    path("figures/releases/<int:number>/discard/", release_views.release_discard, name="release-discard"),
    path(
        "figures/releases/<int:number>/export/<str:fmt_name>/",
        release_views.release_export,
        name="release-export",
    ),
]
