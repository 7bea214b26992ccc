"""Reads of cases, always scoped to what the reader may see (DESIGN.md section 5).

Every door that lists or shows cases starts from ``visible_cases``: another
organisation's case is absent, never forbidden, and never counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from casework.models import Case, StatusChange
from casework.references import normalise_reference
from partners.models import Role

if TYPE_CHECKING:
    from partners.models import User

# Roles that may read case records (analysts see aggregate figures only).
CASE_READER_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ORG_ADMIN})


def can_read_cases(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.role in CASE_READER_ROLES)


def visible_cases(user: User) -> QuerySet[Case]:
    """The cases ``user`` may see: their organisation's, none for an analyst."""
    if not can_read_cases(user):
        return Case.objects.none()
    return Case.objects.filter(organisation_id=user.organisation_id)


def get_visible_case(user: User, reference: str) -> Case | None:
    return (
        visible_cases(user)
        .select_related("organisation", "assigned_to", "institution")
        .filter(reference=normalise_reference(reference))
        .first()
    )


def case_history(case: Case) -> QuerySet[StatusChange]:
    return (
        StatusChange.objects.filter(case=case)
        .select_related("recorded_by", "via", "duplicate_of")
        .order_by("occurred_on", "id")
    )
