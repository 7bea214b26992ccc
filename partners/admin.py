"""Lists to intermediaries in the admin: to read only, confined to the staff member's organisation.

Lists are composed, sent, answered and closed through ``partners.lists.services``
(the pages, the API, the commands); the admin changes none of it, and the
answer trail is append-only everywhere.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_scoping import OrganisationScopedAdmin, ReadOnlyAdmin
from casework.admin import CaseReadsLogged
from partners.models import CaseList, ListAnswer


@admin.register(CaseList)
class CaseListAdmin(ReadOnlyAdmin, OrganisationScopedAdmin):
    list_display = ["id", "intermediary", "organisation", "state", "sent_on", "created_at"]
    list_filter = ["state", "organisation"]
    list_select_related = ["intermediary", "organisation"]
    fields = ("organisation", "intermediary", "state", "sent_on", "note", "created_at", "sent_at", "closed_at")
    readonly_fields = fields


@admin.register(ListAnswer)
class ListAnswerAdmin(CaseReadsLogged, ReadOnlyAdmin, OrganisationScopedAdmin):
    organisation_path = "item__case_list__organisation"
    list_display = ["id", "case_reference", "list_id", "answer", "answered_on", "recorded_at"]
    list_filter = ["answer"]
    list_select_related = ["item__case", "item__case_list"]
    fields = ("case_reference", "list_id", "answer", "answered_on", "note", "recorded_at", "status_change")
    readonly_fields = fields

    def case_id_of(self, obj: ListAnswer) -> int:
        return obj.item.case_id

    @admin.display(description=_("case"))
    def case_reference(self, obj: ListAnswer) -> str:
        return obj.item.case.reference

    @admin.display(description=_("list"))
    def list_id(self, obj: ListAnswer) -> int:
        return obj.item.case_list_id
