"""Reads of cases, always scoped to what the reader may see (DESIGN.md section 5).

Every door that lists or shows cases starts from ``visible_cases``: another
organisation's case is absent, never forbidden, and never counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Case as SqlCase
from django.db.models import Count, F, IntegerField, OrderBy, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from accounts.permissions import can_read_cases
from casework.models import (
    CLOSED_STATUSES,
    MAIN_PATH,
    SIDE_STATUSES,
    AccessLog,
    Case,
    CaseEdit,
    Institution,
    Status,
    StatusChange,
)
from casework.references import normalise_reference

if TYPE_CHECKING:
    from accounts.models import User


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


# --- the case list ---------------------------------------------------------

# Statuses in the order of the work, so that sorting by status follows the path.
_STATUS_RANK = SqlCase(
    *(When(status=status, then=Value(rank)) for rank, status in enumerate([*MAIN_PATH, *sorted(SIDE_STATUSES)])),
    default=Value(99),
    output_field=IntegerField(),
)

# Whitelisted sort keys: key -> ordering. ``id`` breaks ties so pages never overlap.
CASE_SORTS: dict[str, tuple[OrderBy | str, ...]] = {
    "reference": (F("reference").asc(),),
    "-reference": (F("reference").desc(),),
    "reported": (F("reported_on").asc(), F("id").asc()),
    "-reported": (F("reported_on").desc(), F("id").desc()),
    # A case never moved has no last change: the stalest, first when oldest first.
    "changed": (F("last_change_at").asc(nulls_first=True), F("id").asc()),
    "-changed": (F("last_change_at").desc(nulls_last=True), F("id").desc()),
    "status": (_STATUS_RANK.asc(), F("id").asc()),
    "-status": (_STATUS_RANK.desc(), F("id").desc()),
}
DEFAULT_CASE_SORT = "-reported"
IDLE_DAYS = 90


def case_rows(user: User) -> QuerySet[Case]:
    """Visible cases with everything a row of a case table shows, in one query."""
    return visible_cases(user).select_related("assigned_to")


def sort_cases(cases: QuerySet[Case], sort: str) -> QuerySet[Case]:
    return cases.order_by(*CASE_SORTS.get(sort, CASE_SORTS[DEFAULT_CASE_SORT]))


def idle_since(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=IDLE_DAYS)


def idle_q(*, since: dt.datetime) -> Q:
    """Cases whose status has not changed since ``since`` (a never-moved case counts from its creation)."""
    return Q(last_change_at__lt=since) | Q(last_change_at__isnull=True, created_at__lt=since)


# --- the home page -----------------------------------------------------------


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class HomeSummary:
    open_by_status: list[StatusCount]
    open_total: int
    idle_count: int
    idle_cases: list[Case]
    assigned_count: int
    assigned_cases: list[Case]
    latest_changes: list[StatusChange]


OPEN_STATUSES: tuple[str, ...] = tuple(status for status in Status.values if status not in CLOSED_STATUSES)


def home_summary(user: User, *, now: dt.datetime, limit: int = 8) -> HomeSummary:
    """What a signed-in reader sees first: four small queries whatever the number of cases."""
    cases = visible_cases(user)
    open_cases = cases.exclude(status__in=CLOSED_STATUSES)
    since = idle_since(now)
    mine = Q(assigned_to=user)
    # Query 1: every count at once.
    counts = open_cases.aggregate(
        **{f"status_{status}": Count("pk", filter=Q(status=status)) for status in OPEN_STATUSES},
        idle=Count("pk", filter=idle_q(since=since)),
        assigned=Count("pk", filter=mine),
    )
    by_status = [
        StatusCount(status=status, label=str(Status(status).label), count=counts[f"status_{status}"] or 0)
        for status in OPEN_STATUSES
    ]
    # Query 2: the stalest open cases first.
    idle_cases = list(
        open_cases.filter(idle_q(since=since)).order_by(Coalesce("last_change_at", "created_at").asc(), "id")[:limit]
    )
    # Query 3: the reader's own open cases, most recently moved first.
    assigned_cases = list(sort_cases(open_cases.filter(mine), "-changed")[:limit])
    # Query 4: the latest recorded changes; the id follows the recording order.
    latest_changes = (
        list(
            StatusChange.objects.filter(case__organisation_id=user.organisation_id)
            .select_related("case", "recorded_by", "via")
            .order_by("-id")[:limit]
        )
        if can_read_cases(user)
        else []
    )
    return HomeSummary(
        open_by_status=by_status,
        open_total=sum(item.count for item in by_status),
        idle_count=counts["idle"] or 0,
        idle_cases=idle_cases,
        assigned_count=counts["assigned"] or 0,
        assigned_cases=assigned_cases,
        latest_changes=latest_changes,
    )


# --- case detail ---------------------------------------------------------------


def case_edits(case: Case) -> QuerySet[CaseEdit]:
    return CaseEdit.objects.filter(case=case).select_related("edited_by").order_by("version")


# --- sharing with partners and the access log ---------------------------------------


def case_access_log(case: Case) -> QuerySet[AccessLog]:
    """Who read or changed a case, newest first, with everything a row shows in one query."""
    return AccessLog.objects.filter(case=case).select_related("user", "token", "organisation").order_by("-at", "-id")


# --- institutions ----------------------------------------------------------------


def institutions_with_counts(user: User) -> QuerySet[Institution]:
    """Every known institution, with how many of the reader's cases are held there (others' never counted)."""
    own = Q(cases__organisation_id=user.organisation_id) if can_read_cases(user) else Q(pk__in=[])
    return Institution.objects.annotate(
        case_count=Count("cases", filter=own),
        open_count=Count("cases", filter=own & ~Q(cases__status__in=CLOSED_STATUSES)),
    ).order_by("name", "code")


def get_institution(code: str) -> Institution | None:
    return Institution.objects.filter(code=code).first()
