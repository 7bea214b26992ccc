"""Sharing from casework's pages (mounted before casework's URLs: ``cases/share/`` is not a reference)."""

from django.urls import path

from partners import sharing

urlpatterns = [
    path("cases/share/", sharing.case_share_bulk, name="case-share-bulk"),
    path("cases/<str:reference>/shares/", sharing.case_share, name="case-share"),
    path("cases/<str:reference>/shares/<int:share_id>/revoke/", sharing.case_share_revoke, name="case-share-revoke"),
]
