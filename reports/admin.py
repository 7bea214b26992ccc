from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin_scoping import ReadOnlyAdmin, SuperuserOnlyAdmin
from reports.models import Release, ReleaseApproval, Snapshot


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
        (_("Figures"), {"fields": ("min_cell", "exact", "series", "by_organisation")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReleaseApprovalInline(ReadOnlyAdmin, admin.TabularInline[ReleaseApproval, Release]):
    model = ReleaseApproval
    fields = ("approver", "approved_through", "at")
    readonly_fields = ("approver", "approved_through", "at")
    extra = 0
    can_delete = False


@admin.register(Release)
class ReleaseAdmin(SuperuserOnlyAdmin):
    """Read-only: releases are prepared and approved on the releases pages or from the command line, and an
    approved one never changes (the model refuses, and on PostgreSQL a trigger too). Superusers only: a
    draft's cells are not public yet."""

    list_display = ["number", "as_of", "state", "rho", "sigma", "prepared_by", "prepared_at", "approved_at"]
    list_filter = ["state"]
    list_select_related = ["prepared_by"]
    inlines = [ReleaseApprovalInline]
    fieldsets = (
        (None, {"fields": ("number", "as_of", "state", "snapshot", "note")}),
        (_("Preparation and approval"), {"fields": ("prepared_by", "prepared_through", "prepared_at", "approved_at")}),
        (_("Method"), {"fields": ("method", "rho", "sigma", "min_cell", "parameters")}),
        (_("Figures"), {"fields": ("figures",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
