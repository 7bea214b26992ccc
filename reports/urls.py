from django.urls import path

from reports import views

urlpatterns = [
    path("figures/", views.figures_page, name="figures"),
    path("figures/snapshots/", views.request_snapshot, name="figures-request"),
    path("figures/snapshots/<int:snapshot_id>/status/", views.snapshot_status, name="figures-snapshot-status"),
    path("figures/export/<str:fmt_name>/", views.export, name="figures-export"),
]
