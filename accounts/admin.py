from __future__ import annotations

from typing import Any

from axes import admin as axes_admin  # type: ignore[import-untyped, unused-ignore]
from axes.models import AccessAttempt, AccessFailureLog  # type: ignore[import-untyped, unused-ignore]
from axes.models import AccessLog as AxesAccessLog  # type: ignore[import-untyped, unused-ignore]
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped, unused-ignore]

from accounts import enrolment, permissions, services
from accounts.admin_scoping import OrganisationScopedAdmin, ReadOnlyAdmin, SuperuserOnlyAdmin, is_superuser
from accounts.models import AuthenticatorApp, AuthEvent, BackupCodes, EnrolmentCode, Invitation, Organisation, User
from accounts.sessions import end_sessions


@admin.register(Organisation)
class OrganisationAdmin(OrganisationScopedAdmin):
    """Staff see their own organisation only; only superusers add organisations or change their kind."""

    organisation_path = ""
    superuser_fields = ("slug", "kind", "is_host")
    list_display = ["slug", "name", "name_uk", "kind", "is_host"]
    list_filter = ["kind", "is_host"]
    search_fields = ["slug", "name"]
    ordering = ["slug"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Organisation | None = None) -> bool:
        # Organisations own cases and history; they are never deleted from here.
        return False


@admin.register(User)
class UserAdmin(OrganisationScopedAdmin, BaseUserAdmin[User]):
    """Staff manage their organisation's people; who is staff or superuser, their groups and permissions, and
    which organisation a user belongs to are a superuser's to change."""

    superuser_fields = ("is_staff", "is_superuser", "groups", "user_permissions")
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

    actions = ["deactivate_and_sign_out", "reset_second_factor"]

    # Staff who are not superusers change only the ordinary users of their organisation (accounts.permissions):
    # never a superuser or another staff member (their password, address, role, or deletion would be a takeover),
    # never themselves. The password page, the change page, deletion and the actions all ask this.
    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_change_permission(request, obj) and permissions.can_change_account(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return super().has_delete_permission(request, obj) and permissions.can_change_account(request.user, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        super().delete_queryset(request, self._changeable(request, queryset))

    def _changeable(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if is_superuser(request):
            return queryset
        refused = [user for user in queryset if not permissions.can_change_account(request.user, user)]
        if refused:
            self.message_user(
                request,
                _("Not done for %(users)s: staff and superusers are changed only by a superuser, and never oneself.")
                % {"users": ", ".join(user.get_username() for user in refused)},
                messages.WARNING,
            )
        return queryset.exclude(pk__in=[user.pk for user in refused])

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
        deactivated, ended = services.deactivate_users(users=list(self._changeable(request, queryset)), by=me)
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

    @admin.action(
        description=_("Reset the second factor of the selected users and issue enrolment codes"),
        permissions=["change"],
    )
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        """Only for the users this admin may manage (accounts.permissions); the codes are shown once."""
        me: Any = request.user
        issued, refused = [], []
        for user in queryset.filter(is_active=True):
            try:
                issued.append(enrolment.issue_enrolment_code(user=user, by=me, request=request, reset=True))
            except (PermissionDenied, ValidationError):
                refused.append(user.get_username())
        if refused:
            self.message_user(
                request,
                _("Not done for %(users)s: only their organisation's admin or a superuser may, never for oneself.")
                % {"users": ", ".join(refused)},
                messages.WARNING,
            )
        if not issued:
            return None
        context = {**self.admin_site.each_context(request), "title": _("Enrolment codes"), "issued": issued}
        response = TemplateResponse(request, "admin/accounts/enrolment_codes.html", context)
        add_never_cache_headers(response)
        patch_cache_control(response, private=True, no_store=True)
        return response


@admin.register(AuthEvent)
class AuthEventAdmin(OrganisationScopedAdmin):
    """Read-only: the record of sign-ins, failures, lockouts and refusals."""

    list_display = ["at", "kind", "username", "by", "organisation", "ip_address", "path"]
    list_filter = ["kind", "organisation"]
    list_select_related = ["organisation", "by"]
    search_fields = ["username"]
    search_help_text = _("Search by username")
    date_hierarchy = "at"
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = ["at", "kind", "user", "username", "by", "organisation", "ip_address", "path"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuthEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuthEvent | None = None) -> bool:
        return False


# --- second factors: each organisation's staff see their own people's devices, never a secret ---------------


admin.site.unregister(TOTPDevice)
admin.site.unregister(StaticDevice)


@admin.register(AuthenticatorApp)
class AuthenticatorAppAdmin(OrganisationScopedAdmin):
    """Read-only: set up by the user with an enrolment code, reset with the users' action (logged), never
    deleted here; the key is never shown (it is kept encrypted)."""

    organisation_path = "user__organisation"
    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    list_select_related = ["user"]
    search_fields = ["^user__username"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = ["user", "name", "confirmed", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a reset goes through the users' action: logged, and a code to set up a new one


@admin.register(BackupCodes)
class BackupCodesAdmin(AuthenticatorAppAdmin):
    """The codes are kept hashed: the admin shows only that the device exists."""


@admin.register(EnrolmentCode)
class EnrolmentCodeAdmin(ReadOnlyAdmin, OrganisationScopedAdmin):
    """Read-only: who was given a code, by whom, and whether it was used. The code itself is only hashed."""

    organisation_path = "user__organisation"
    list_display = ["user", "issued_by", "issued_at", "expires_at", "used_at", "withdrawn_at"]
    list_select_related = ["user", "issued_by"]
    search_fields = ["^user__username"]
    fields = ["user", "issued_by", "issued_at", "expires_at", "used_at", "withdrawn_at"]
    readonly_fields = ["user", "issued_by", "issued_at", "expires_at", "used_at", "withdrawn_at"]


@admin.register(Invitation)
class InvitationAdmin(EnrolmentCodeAdmin):
    """Read-only: who was invited, by whom, and whether the link was used. The link itself is only hashed.

    Invitations are made, resent and withdrawn by the organisation's admin on its people page
    (accounts.invitations), which logs each.
    """


# --- shared by every organisation: superusers only ------------------------------------------


admin.site.unregister(Group)


@admin.register(Group)
class RestrictedGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    pass


for _model, _base in (
    (AccessAttempt, axes_admin.AccessAttemptAdmin),
    (AxesAccessLog, axes_admin.AccessLogAdmin),
    (AccessFailureLog, axes_admin.AccessFailureLogAdmin),
):
    admin.site.unregister(_model)
    admin.site.register(_model, type(f"Restricted{_base.__name__}", (SuperuserOnlyAdmin, _base), {}))
