"""The case list as a file: the anonymised fields of the cases a filter matches, every exported case logged.

Notes and identifiers never leave in an export: only the fields of the list.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.permissions import can_export_cases
from casework.audit import log_access
from casework.models import AccessLog, Case
from casework.services import NotPermitted

EXPORT_LIMIT = 50_000
EXPORT_COLUMNS = (
    "reference",
    "status",
    "sex",
    "birth_year",
    "age_band",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "risk_flags",
    "last_change_at",
)


class ExportTooLarge(Exception):
    """More cases match than one export may hold: narrow the filter."""


def export_cases(*, user: User, cases: QuerySet[Case], request: Any = None) -> list[Case]:
    """The cases to export (at most EXPORT_LIMIT), each logged as exported by ``user``."""
    if not can_export_cases(user):
        raise NotPermitted(_("Only a supervisor may export cases."))
    chosen = list(cases.select_related("institution")[: EXPORT_LIMIT + 1])
    if len(chosen) > EXPORT_LIMIT:
        raise ExportTooLarge
    log_access(
        action=AccessLog.Action.EXPORT,
        door=AccessLog.Door.EXPORT,
        organisation_id=user.organisation_id,
        case_ids=[case.pk for case in chosen],
        user=user,
        request=request,
    )
    return chosen


def rows(cases: Iterable[Case]) -> Iterator[list[Any]]:
    """The header, then one row per case; dates in ISO 8601."""
    yield list(EXPORT_COLUMNS)
    for case in cases:
        yield [
            case.reference,
            case.status,
            case.sex,
            case.birth_year or "",
            case.age_band,
            case.oblast,
            case.reported_on.isoformat(),
            case.displaced_on.isoformat() if case.displaced_on else "",
            case.placement,
            case.institution.code if case.institution else "",
            " ".join(case.risk_flags),
            case.last_change_at.isoformat() if case.last_change_at else "",
        ]


def write_csv(cases: Iterable[Case], stream: Any) -> None:
    csv.writer(stream).writerows(rows(cases))
