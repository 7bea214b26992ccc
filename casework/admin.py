"""Django admin for cases: status and history are read-only; moves go through the service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_scoping import (
    OrganisationScopedAdmin,
    ReadOnlyAdmin,
    SuperuserOnlyAdmin,
    is_superuser,
    organisation_of,
)
from accounts.models import User
from casework import services
from casework.audit import log_access
from casework.display import datetime_with_seconds
from casework.forms import StatusChangeForm
from casework.import_models import ImportJob, ImportMapping
from casework.models import AccessLog, Case, CaseIdentifier, Institution, StatusChange
from casework.references import normalise_reference
from casework.task_models import FollowUpRule, Task


def _log(request: HttpRequest, action: str, case_ids: list[int]) -> None:
    """The admin is a door like the others: every case it shows or changes is in the access log."""
    user: Any = request.user
    log_access(
        action=action,
        door=AccessLog.Door.ADMIN,
        organisation_id=user.organisation_id,
        case_ids=case_ids,
        user=user,
        request=request,
    )


@admin.register(Institution)
class InstitutionAdmin(SuperuserOnlyAdmin):
    """Institutions are known to every organisation: staff read them, superusers change them."""

    staff_may_read = True
    list_display = ["code", "name", "name_uk", "region", "kind"]
    list_filter = ["kind", "region"]
    search_fields = ["code", "name"]


class StatusChangeInline(ReadOnlyAdmin, admin.TabularInline[StatusChange, Case]):
    """The history, shown read-only: nothing here can add, edit or delete a row."""

    model = StatusChange
    fk_name = "case"
    extra = 0
    can_delete = False
    ordering = ["occurred_on", "id"]
    fields = (
        "occurred_on",
        "from_status",
        "to_status",
        "via",
        "duplicate_of",
        "is_correction",
        "note",
        "recorded_at",
        "recorded_by",
        "recorded_via",
        "version",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[StatusChange]:
        return super().get_queryset(request).select_related("via", "duplicate_of", "recorded_by")


class CaseAdminForm(forms.ModelForm[Case]):
    # The version the form was loaded at, so a stale save is refused.
    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Case
        fields = [*services.EDITABLE_FIELDS, "organisation"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The service's own checks, run here too so errors show next to the fields.
        values = {name: getattr(self.instance, name, None) for name in services.EDITABLE_FIELDS}
        values.update({name: cleaned.get(name) for name in services.EDITABLE_FIELDS if name in self.fields})
        for name in ("source", "placement", "displaced_precision", "notes"):
            values[name] = values.get(name) or ""
        for field_name, messages_ in services.validate_case_values(values, today=timezone.localdate()).items():
            for message in messages_:
                self.add_error(field_name if field_name in self.fields else None, message)
        loaded = cleaned.get("loaded_version")
        if self.instance.pk and loaded and loaded != self.instance.version:
            self.add_error(
                None,
                str(
                    services.StaleVersion(
                        case=self.instance,
                        expected_version=loaded,
                        changes=services.changes_since(self.instance, loaded),
                    )
                ),
            )
        return cleaned

    def _post_clean(self) -> None:
        # Model validation is the service's; skip ModelForm's instance.full_clean().
        pass


class ReferenceStatusFilter(admin.SimpleListFilter):
    title = _("open or closed")
    parameter_name = "open"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("Open")), ("0", _("Closed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        from casework.models import CLOSED_STATUSES

        if self.value() == "1":
            return queryset.exclude(status__in=CLOSED_STATUSES)
        if self.value() == "0":
            return queryset.filter(status__in=CLOSED_STATUSES)
        return queryset


@admin.register(Case)
class CaseAdmin(OrganisationScopedAdmin):
    form = CaseAdminForm
    list_display = ["reference", "status", "oblast", "organisation", "placement", "reported_on", "last_change_at"]
    list_filter = ["status", ReferenceStatusFilter, "oblast", "organisation", "placement"]
    list_select_related = ["organisation"]
    search_fields = ["reference"]
    search_help_text = _("Search by reference, e.g. C-7K3M-Q9XR")
    show_full_result_count = False
    list_per_page = 50
    inlines = [StatusChangeInline]
    readonly_fields = ["reference", "status_and_move", "version", "created_at", "updated_at", "last_change_at"]
    actions = ["change_status_action"]
    fieldsets = (
        (None, {"fields": ("reference", "organisation", "assigned_to", "status_and_move", "version")}),
        (_("Child (anonymised)"), {"fields": ("sex", "birth_year", "oblast")}),
        (
            _("Report and whereabouts"),
            {"fields": ("reported_on", "displaced_on", "displaced_precision", "source", "placement", "institution")},
        ),
        (_("Risks"), {"fields": ("risk_adoption", "risk_citizenship", "risk_military", "risk_medical")}),
        (_("Notes"), {"fields": ("notes", "loaded_version")}),
        (_("Record"), {"fields": ("created_at", "updated_at", "last_change_at")}),
    )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assigned_to":
            # Named by username, among the active people (scoped to the reader's organisation below).
            kwargs["queryset"] = User.objects.filter(is_active=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Case | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("organisation")  # a case does not change owner here
        return fields

    def get_inlines(
        self, request: HttpRequest, obj: Case | None
    ) -> list[type[admin.options.InlineModelAdmin[Any, Any]]]:
        return list(self.inlines) if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj: Case | None = None) -> Any:
        if obj is None:
            return (
                (None, {"fields": ("organisation", "assigned_to")}),
                *self.fieldsets[1:5],
            )
        return self.fieldsets

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Case], search_term: str
    ) -> tuple[QuerySet[Case], bool]:
        term = normalise_reference(search_term)
        if not term:
            return queryset, False
        # An index-friendly prefix match: exact references and their beginnings.
        return queryset.filter(reference__startswith=term), False

    def has_delete_permission(self, request: HttpRequest, obj: Case | None = None) -> bool:
        # Cases are closed as withdrawn or duplicate, never deleted.
        return False

    @admin.display(description=_("status"))
    def status_and_move(self, obj: Case) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:casework_case_change_status", args=[obj.pk])
        return format_html(
            '{} &nbsp; <a class="button" href="{}">{}</a>', obj.get_status_display(), url, _("Change status")
        )

    def save_model(self, request: HttpRequest, obj: Case, form: Any, change: bool) -> None:
        actor = services.Actor.for_user(request.user)  # type: ignore[arg-type]
        values = {name: form.cleaned_data.get(name) for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        values = {
            k: ("" if v is None and k in {"source", "placement", "displaced_precision", "notes"} else v)
            for k, v in values.items()
        }
        if change:
            version = form.cleaned_data.get("loaded_version") or obj.version
            saved = services.update_case(case=obj, actor=actor, expected_version=version, values=values)
            if saved.version != version:
                _log(request, AccessLog.Action.EDIT, [saved.pk])
        else:
            # A superuser chooses the organisation; other staff add their own organisation's cases.
            organisation_id = (
                form.cleaned_data["organisation"].pk if is_superuser(request) else organisation_of(request)
            )
            assert organisation_id is not None, "every user belongs to an organisation"
            actor = services.Actor(
                organisation_id=organisation_id, role=actor.role, user=actor.user, is_superuser=actor.is_superuser
            )
            saved = services.create_case(actor=actor, values=values)
            _log(request, AccessLog.Action.CREATE, [saved.pk])
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if object_id is not None and request.method == "GET" and response.status_code == 200:
                # Shown: the case existed and was in this admin's reach (a missing one redirects).
                original = getattr(response, "context_data", {}).get("original")
                if original is not None:
                    _log(request, AccessLog.Action.VIEW, [original.pk])
            return response
        except services.StaleVersion as conflict:
            self.message_user(request, str(conflict), messages.ERROR)
            return HttpResponseRedirect(request.path)
        except ValidationError as error:
            for field_name, errors in error.message_dict.items():
                for message in errors:
                    self.message_user(request, f"{field_name}: {message}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        except services.NotPermitted as refusal:
            self.message_user(request, str(refusal), messages.ERROR)
            return HttpResponseRedirect(request.path)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        original = getattr(response, "context_data", {}).get("object") if response.status_code == 200 else None
        if original is not None:
            # The history page names the case and who changed what: a read like any other.
            _log(request, AccessLog.Action.VIEW, [original.pk])
        return response

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, str] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl") if response.status_code == 200 else None
        if changelist is not None:
            _log(request, AccessLog.Action.LIST, [case.pk for case in changelist.result_list])
        return response

    def log_listed(self, request: HttpRequest, cases: list[Case]) -> None:
        """The references the admin's search-as-you-type offered (config.admin.LoggedAutocompleteJsonView)."""
        _log(request, AccessLog.Action.LIST, [case.pk for case in cases])

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/change-status/",
                self.admin_site.admin_view(self.change_status_view),
                name="casework_case_change_status",
            ),
            *super().get_urls(),
        ]

    @admin.action(description=_("Change the status of the selected case"))
    def change_status_action(self, request: HttpRequest, queryset: QuerySet[Case]) -> HttpResponse | None:
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(request, _("Select exactly one case to change its status."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:casework_case_change_status", args=[selected[0].pk]))

    def change_status_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        case = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_change_permission(request, case):
            raise PermissionDenied
        actor = services.Actor.for_user(request.user)  # type: ignore[arg-type]
        form = StatusChangeForm(request.POST or None, case=case, actor=actor)
        if request.method == "POST" and form.is_valid():
            try:
                change = form.save()
            except services.StaleVersion as conflict:
                self.message_user(request, str(conflict), messages.ERROR)
                return HttpResponseRedirect(request.path)
            if change is not None:
                _log(request, AccessLog.Action.STATUS_CHANGE, [case.pk])
                self.message_user(request, _("Status changed."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:casework_case_change", args=[case.pk]))
        if request.method == "GET":
            _log(request, AccessLog.Action.VIEW, [case.pk])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change status of %(reference)s") % {"reference": case.reference},
            "case": case,
            "form": form,
            "opts": self.model._meta,
            "original": case,
        }
        return TemplateResponse(request, "admin/casework/case/change_status.html", context)


@admin.register(CaseIdentifier)
class CaseIdentifierAdmin(OrganisationScopedAdmin):
    """Hashes only: there is nothing to read back, but duplicates can be traced."""

    organisation_path = "case__organisation"
    list_display = ["case", "kind", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["case"]
    readonly_fields = ["case", "kind", "digest", "created_at"]
    search_fields = ["=case__reference"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessLog)
class AccessLogAdmin(OrganisationScopedAdmin):
    """The access log, to search and read only: nobody adds, edits or deletes a row from here."""

    list_display = ["when", "case_reference", "who", "organisation", "action", "door", "ip_address"]
    list_filter = ["door", "action", "organisation"]
    list_select_related = ["case", "user", "token", "organisation"]
    search_fields = ["^case__reference", "^user__username", "^token__prefix"]
    search_help_text = _("Search by case reference (or its beginning), username or API token prefix.")
    date_hierarchy = "at"
    show_full_result_count = False
    list_per_page = 100
    fields = ["at", "case_reference", "who", "organisation", "action", "door", "ip_address"]
    readonly_fields = ["at", "case_reference", "who", "organisation", "action", "door", "ip_address"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessLog]:
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if not is_superuser(request):
            # Staff see their organisation's accesses and every access to its cases (a partner's too).
            mine = organisation_of(request)
            queryset = queryset.filter(models.Q(organisation_id=mine) | models.Q(case__organisation_id=mine))
        return queryset

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AccessLog], search_term: str
    ) -> tuple[QuerySet[AccessLog], bool]:
        term = search_term.strip()
        if term.upper().startswith("C-"):
            # A reference however typed: the same normalisation as everywhere else.
            return queryset.filter(case__reference__startswith=normalise_reference(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("at"), ordering="at")
    def when(self, obj: AccessLog) -> str:
        # To the second, and sortable by eye: an audit trail is read event by event.
        return format_html('<span class="nowrap">{}</span>', datetime_with_seconds(obj.at))

    @admin.display(description=_("case"), ordering="case__reference")
    def case_reference(self, obj: AccessLog) -> str:
        if obj.case is None:
            return "—"
        return format_html('<span class="nowrap">{}</span>', obj.case.reference)

    @admin.display(description=_("who"))
    def who(self, obj: AccessLog) -> str:
        if obj.user is not None:
            return obj.user.get_username()
        if obj.token is not None:
            return str(_("API token %(prefix)s") % {"prefix": obj.token.prefix})
        return "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- A caseworker's day and the web import: to read only -----------------------------------------------
#
# Follow-ups are created, done and reassigned through casework.followups (the pages, the rules, the
# team view), which log each change; rules are edited on the team's rules page; imports run through the
# import pages. The admin reads them, scoped like the rest, and logs the cases it shows. Notices and saved
# filters are each person's own and are not in the admin; nor are the uploaded files or their problems.


class CaseReadsLogged:
    """For an admin of rows that name a case: every case its list or page shows is in the access log.

    ``case_id_of`` gives a row's case (its ``case_id`` by default).
    """

    def case_id_of(self, obj: Any) -> int:
        return int(obj.case_id)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, str] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        changelist = getattr(response, "context_data", {}).get("cl") if response.status_code == 200 else None
        if changelist is not None:
            _log(request, AccessLog.Action.LIST, sorted({self.case_id_of(obj) for obj in changelist.result_list}))
        return response  # type: ignore[no-any-return]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        original = getattr(response, "context_data", {}).get("original") if response.status_code == 200 else None
        if original is not None:
            _log(request, AccessLog.Action.VIEW, [self.case_id_of(original)])
        return response  # type: ignore[no-any-return]


@admin.register(FollowUpRule)
class FollowUpRuleAdmin(ReadOnlyAdmin, OrganisationScopedAdmin):
    list_display = ["kind", "days", "is_active", "organisation"]
    list_filter = ["kind", "is_active", "organisation"]
    list_select_related = ["organisation"]
    fields = ("organisation", "kind", "days", "is_active")
    readonly_fields = fields


@admin.register(Task)
class TaskAdmin(CaseReadsLogged, ReadOnlyAdmin, OrganisationScopedAdmin):
    organisation_path = "case__organisation"
    list_display = ["case_reference", "kind", "due_on", "state", "assigned_to"]
    list_filter = ["state", "kind"]
    list_select_related = ["case", "assigned_to"]
    search_fields = ["=case__reference"]
    fields = (
        "case_reference",
        "kind",
        "due_on",
        "assigned_to",
        "state",
        "note",
        "rule",
        "created_by",
        "created_at",
        "done_at",
        "done_by",
    )
    readonly_fields = fields

    @admin.display(description=_("case"), ordering="case__reference")
    def case_reference(self, obj: Task) -> str:
        return obj.case.reference

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        return super().get_search_results(request, queryset, normalise_reference(search_term))


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin, OrganisationScopedAdmin):
    list_display = ["cases_name", "state", "organisation", "created_by", "created_at", "case_count", "problem_count"]
    list_filter = ["state", "organisation"]
    list_select_related = ["organisation", "created_by"]
    fields = (
        "organisation",
        "created_by",
        "created_at",
        "state",
        "cases_name",
        "events_name",
        "done",
        "total",
        "case_count",
        "event_count",
        "detail_count",
        "problem_count",
        "finished_at",
    )
    readonly_fields = fields


@admin.register(ImportMapping)
class ImportMappingAdmin(ReadOnlyAdmin, OrganisationScopedAdmin):
    list_display = ["header", "column", "sheet", "organisation", "updated_at"]
    list_filter = ["sheet", "organisation"]
    list_select_related = ["organisation"]
    fields = ("organisation", "sheet", "header", "column", "updated_at")
    readonly_fields = fields
