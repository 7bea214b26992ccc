from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin_scoping import SuperuserOnlyAdmin
from reports.models import Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(SuperuserOnlyAdmin):
    """Read-only: snapshots are computed by the task and never edited (request new ones on the figures page).

    They hold the exact figures of every organisation: superusers only.
    """

    list_display = ["id", "as_of", "state", "trigger", "requested_by", "requested_at", "finished_at", "duration_ms"]
    list_filter = ["state", "trigger"]
    date_hierarchy = "as_of"
    list_select_related = ["requested_by"]
    fieldsets = (
        (None, {"fields": ("as_of", "state", "trigger", "requested_by", "error")}),
        (
            _("Timing"),
            {
                "fields": (
                    "requested_at",
                    "started_at",
                    "finished_at",
                    "duration_ms",
                    "attempts",
                    "heartbeat_at",
                    "restarted_at",
                )
            },
        ),
        (
            _("Computed from"),
            {"fields": ("source_cases", "source_status_changes", "source_last_change_id", "source_last_case_update")},
        ),
        (_("Figures"), {"fields": ("min_cell", "exact", "published", "by_organisation")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
