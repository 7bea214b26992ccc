from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import AuthEvent, Organisation, User
from accounts.sessions import end_sessions


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin[Organisation]):
    list_display = ["slug", "name", "name_uk", "kind"]
    list_filter = ["kind"]
    search_fields = ["slug", "name"]
    ordering = ["slug"]

    def has_delete_permission(self, request: HttpRequest, obj: Organisation | None = None) -> bool:
        # Organisations own cases and history; they are never deleted from here.
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = ["username", "organisation", "role", "is_active", "is_staff", "last_login"]
    list_filter = ["organisation", "role", "is_active", "is_staff", "is_superuser"]
    list_select_related = ["organisation"]
    search_fields = ["username", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Organisation and role"), {"fields": ("organisation", "role")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    # Recorded by the sign-in, never typed.
    readonly_fields = ["last_login", "date_joined"]
    # Plain multiple choice lists: the two-box widget's icons fail accessibility checks.
    filter_horizontal = ()
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "organisation", "role", "password1", "password2"),
            },
        ),
    )

    actions = ["deactivate_and_sign_out"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        queryset = super().get_queryset(request)
        user: Any = request.user
        if not user.is_superuser:
            queryset = queryset.filter(organisation_id=user.organisation_id)
        return queryset

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Deactivation takes effect at once: every open session of the account ends now.
            ended = end_sessions(obj)
            self.message_user(
                request,
                ngettext("%(count)d open session ended.", "%(count)d open sessions ended.", ended) % {"count": ended},
                messages.INFO,
            )

    @admin.action(description=_("Deactivate the selected users and end their sessions"), permissions=["change"])
    def deactivate_and_sign_out(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        # Never the admin's own account (the service skips it): that would lock them out mid-action.
        me: Any = request.user
        deactivated, ended = services.deactivate_users(users=list(queryset), by=me)
        self.message_user(
            request,
            ngettext(
                "%(users)d user deactivated; %(count)d open session ended.",
                "%(users)d users deactivated; %(count)d open sessions ended.",
                ended,
            )
            % {"users": deactivated, "count": ended},
            messages.SUCCESS,
        )


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin[AuthEvent]):
    """Read-only: the record of sign-ins, failures, lockouts and refusals."""

    list_display = ["at", "kind", "username", "organisation", "ip_address", "path"]
    list_filter = ["kind", "organisation"]
    list_select_related = ["organisation"]
    search_fields = ["username"]
    search_help_text = _("Search by username")
    date_hierarchy = "at"
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = ["at", "kind", "user", "username", "organisation", "ip_address", "path"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuthEvent]:
        queryset = super().get_queryset(request)
        user: Any = request.user
        if not user.is_superuser:
            queryset = queryset.filter(organisation_id=user.organisation_id)
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuthEvent | None = None) -> bool:
        return False
