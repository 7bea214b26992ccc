"""Reads for the partner API: which cases an organisation's token may see."""

from __future__ import annotations

import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from casework.models import Case, StatusChange
from partners.models import Organisation, Share


def api_cases(organisation_id: int, *, at: datetime.datetime | None = None) -> QuerySet[Case]:
    """The organisation's own cases and the cases actively shared with it, with the access each gives.

    Anything else does not exist for the caller (a 404, never counted).
    """
    at = at or timezone.now()
    live = Share.objects.active(at=at).filter(partner_id=organisation_id, case_id=OuterRef("pk"))
    return (
        Case.objects.filter(Q(organisation_id=organisation_id) | Q(Exists(live)))
        .annotate(
            access=Coalesce(
                Subquery(live.order_by("-scope").values("scope")[:1]),  # "update" sorts after "read"
                Value("owner"),
            )
        )
        .select_related("institution", "organisation")
    )


def api_case_history(case: Case) -> QuerySet[StatusChange]:
    return StatusChange.objects.filter(case=case).select_related("via").order_by("occurred_on", "id")


def intermediaries() -> QuerySet[Organisation]:
    return Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).order_by("slug")
