"""The list sections added to casework's pages (casework cannot import partners: casework.sections).

On the case page: the lists the case is on, each with its trail of answers (the
case's timeline of what intermediaries said). On the case list: for supervisors,
the form that puts the ticked cases, or every case the filter matches, on a list.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.permissions import can_compose_lists, can_read_lists
from accounts.requests import signed_in_user
from casework import sections
from casework.models import Case
from partners.lists import selectors
from partners.lists.forms import TargetForm

SECTION = "lists"


def _case_page_section(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    user = signed_in_user(request)
    if not can_read_lists(user, case.organisation_id):
        return None
    items = list(selectors.case_list_items(case.pk, case.organisation_id))
    if not items:
        return None
    return {"items": items}


def _case_list_section(request: HttpRequest, state: sections.CaseListState) -> dict[str, Any] | None:
    user = signed_in_user(request)
    if not can_compose_lists(user) or not state.count:
        return None
    return {"form": TargetForm(user=user), "count": state.count, "count_is_exact": state.count_is_exact}


def register_sections() -> None:
    sections.add_to_case_page(name=SECTION, template="partners/lists/_case_lists.html", context=_case_page_section)
    sections.add_to_case_list(name=SECTION, template="partners/lists/_case_list_lists.html", context=_case_list_section)
