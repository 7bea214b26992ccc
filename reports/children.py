"""Children, not records (DESIGN.md section 4): the register-wide figures count a child once.

Cases confirmed as the same child (``linkage.selectors.confirmed_groups``) form one child; a case
linked to no other is a child of its own. ``reports.figures`` counts cases in one SQL statement; here
the few groups of linked cases are read (their cases and status histories, two queries) and each
group's contribution is taken out of the tally case by case, the way the statement counted it, and
put back once, as the child's:

* a child exists on D if any of its cases exists on D; it is in reported(D) if any of its cases is,
  in repatriated(D) if any of its cases is;
* its oblast, sex and age band are those of its earliest reported case (ties: the lowest id);
* its return event is the earliest return event among its cases in repatriated(D) (ties: the lowest
  id of the change), with that case's intermediary and days to return;
* in the monthly series, as in the figures, the child counts at a month's end (D in D's month) if any
  of its cases is counted then.

The work grows with the number of linked cases, never with the register. ``tests/test_children.py``
checks this against hand-built groups.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from casework.models import RETURNED_STATUSES, SIDE_STATUSES, Case, Status, StatusChange, age_band_key
from linkage.selectors import confirmed_groups


class Tally(Protocol):
    """What ``reports.figures._Tally`` holds (kept as a protocol: the arrows stay one way inside reports)."""

    cells: dict[tuple[str, str, int], list[int]]
    reported_by_month: dict[int, int]
    returned_by_month: dict[int, int]
    by_via: dict[int | None, int]
    days: dict[int, int]


@dataclass
class _Case:
    id: int
    reported_on: dt.date
    oblast: str
    sex: str
    birth_year: int | None
    # (occurred_on, id, from, to, via id), in recording order
    changes: list[tuple[dt.date, int, str, str, int | None]] = field(default_factory=list)

    def status_on(self, day: dt.date) -> str:
        status = Status.REPORTED.value
        for occurred_on, _id, _from, to, _via in self.changes:
            if occurred_on > day:
                break
            status = to
        return status

    def counted(self, day: dt.date) -> tuple[bool, bool]:
        """(in reported, in repatriated) on ``day``."""
        if self.reported_on > day:
            return False, False
        status = self.status_on(day)
        reported = status not in SIDE_STATUSES
        return reported, reported and status in RETURNED_STATUSES

    def return_event(self, day: dt.date) -> tuple[dt.date, int, int | None] | None:
        """(occurred_on, change id, via id) of the return event on ``day``, when the case is in repatriated."""
        if not self.counted(day)[1]:
            return None
        event = None
        for occurred_on, change_id, from_status, to, via in self.changes:
            if occurred_on > day:
                break
            if to in RETURNED_STATUSES and from_status not in RETURNED_STATUSES:
                event = (occurred_on, change_id, via)
        return event


def _month_key(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_point(month: int, as_of: dt.date) -> dt.date:
    """The day a month's value is read on: its last day, or D in D's month."""
    if month == _month_key(as_of):
        return as_of
    year, index = divmod(month + 1, 12)
    return dt.date(year, index + 1, 1) - dt.timedelta(days=1)


def _load(groups: Sequence[Sequence[int]], as_of: dt.date) -> dict[int, _Case]:
    ids = [case_id for group in groups for case_id in group]
    cases = {
        pk: _Case(pk, reported_on, oblast, sex, birth_year)
        for pk, reported_on, oblast, sex, birth_year in Case.objects.filter(pk__in=ids).values_list(
            "pk", "reported_on", "oblast", "sex", "birth_year"
        )
    }
    changes = (
        StatusChange.objects.filter(case_id__in=ids, occurred_on__lte=as_of)
        .order_by("occurred_on", "id")
        .values_list("case_id", "occurred_on", "id", "from_status", "to_status", "via_id")
    )
    for case_id, occurred_on, change_id, from_status, to_status, via_id in changes:
        cases[case_id].changes.append((occurred_on, change_id, from_status, to_status, via_id))
    return cases


@dataclass
class _Contribution:
    """What some cases, or one child, add to a tally: cells, monthly values, return events."""

    cells: dict[tuple[str, str, int], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    reported_by_month: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    returned_by_month: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    by_via: dict[int | None, int] = field(default_factory=lambda: defaultdict(int))
    days: dict[int, int] = field(default_factory=lambda: defaultdict(int))


def _cell(case: _Case, bands: Sequence[str]) -> tuple[str, str, int]:
    band = age_band_key(birth_year=case.birth_year, reported_year=case.reported_on.year)
    return case.oblast, case.sex, bands.index(band)


def _series(members: Iterable[_Case], start: int, as_of: dt.date, into: _Contribution) -> None:
    """The monthly values of these cases taken together (counted if any is), as deltas from ``start``."""
    members = list(members)
    previous = (0, 0)
    for month in range(start, _month_key(as_of) + 1):
        point = _month_point(month, as_of)
        counted = [case.counted(point) for case in members]
        now = (int(any(r for r, _p in counted)), int(any(p for _r, p in counted)))
        into.reported_by_month[month] += now[0] - previous[0]
        into.returned_by_month[month] += now[1] - previous[1]
        previous = now


def _as_records(cases: Sequence[_Case], as_of: dt.date, bands: Sequence[str]) -> _Contribution:
    """The cases counted one by one, as the figures' statement counts them."""
    contribution = _Contribution()
    for case in cases:
        if case.reported_on > as_of:
            continue
        reported, repatriated = case.counted(as_of)
        cell = contribution.cells[_cell(case, bands)]
        cell[0] += reported
        cell[1] += repatriated
        _series([case], _month_key(case.reported_on), as_of, contribution)
        event = case.return_event(as_of)
        if event is not None:
            contribution.by_via[event[2]] += 1
            contribution.days[(event[0] - case.reported_on).days] += 1
    return contribution


def _as_child(cases: Sequence[_Case], as_of: dt.date, bands: Sequence[str]) -> _Contribution:
    """The cases counted once, as one child."""
    contribution = _Contribution()
    existing = [case for case in cases if case.reported_on <= as_of]
    if not existing:
        return contribution
    earliest = min(existing, key=lambda case: (case.reported_on, case.id))
    counted = [case.counted(as_of) for case in existing]
    cell = contribution.cells[_cell(earliest, bands)]
    cell[0] += any(reported for reported, _repatriated in counted)
    cell[1] += any(repatriated for _reported, repatriated in counted)
    _series(existing, _month_key(earliest.reported_on), as_of, contribution)
    events = [(event, case) for case in existing if (event := case.return_event(as_of)) is not None]
    if events:
        (occurred_on, _change_id, via), case = min(events, key=lambda found: found[0][:2])
        contribution.by_via[via] += 1
        contribution.days[(occurred_on - case.reported_on).days] += 1
    return contribution


def _apply(tally: Tally, contribution: _Contribution, sign: int) -> None:
    for key, (reported, repatriated) in contribution.cells.items():
        cell = tally.cells[key]
        cell[0] += sign * reported
        cell[1] += sign * repatriated
    for month, value in contribution.reported_by_month.items():
        tally.reported_by_month[month] += sign * value
    for month, value in contribution.returned_by_month.items():
        tally.returned_by_month[month] += sign * value
    for via, count in contribution.by_via.items():
        tally.by_via[via] += sign * count
    for days, count in contribution.days.items():
        tally.days[days] += sign * count


def count_children(tally: Tally, *, as_of: dt.date, bands: Sequence[str]) -> int:
    """Turn a register-wide tally of cases into one of children (two queries, none without links). Returns the
    number of groups of linked cases. A child's intermediary is one of its cases', already in the tally."""
    groups = confirmed_groups()
    if not groups:
        return 0
    cases = _load(groups, as_of)
    for group in groups:
        members = [cases[case_id] for case_id in group if case_id in cases]
        _apply(tally, _as_records(members, as_of, bands), -1)
        _apply(tally, _as_child(members, as_of, bands), +1)
    _drop_empty(tally)
    return len(groups)


def _drop_empty(tally: Any) -> None:
    """Cells and counts brought to zero by the change were never in the statement's output: leave them out
    (the monthly deltas stay: their months still exist)."""
    for key in [key for key, cell in tally.cells.items() if cell == [0, 0]]:
        del tally.cells[key]
    for mapping in (tally.by_via, tally.days):
        for key in [key for key, count in mapping.items() if count == 0]:
            del mapping[key]


def _label(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def count_children_in_release_series(
    reported: dict[str, int], repatriated: dict[str, int], days: dict[str, int], *, as_of: dt.date
) -> int:
    """The release series (``reports.figures.compute_release_series``: by month of report, by month of the
    return event, by days to return) of children instead of cases, as ``count_children`` does for the figures:
    each linked group's cases are taken out one by one and the child put back once (its earliest report's month;
    its earliest return event, days counted from that case's report). Returns the number of groups."""
    groups = confirmed_groups()
    if not groups:
        return 0
    cases = _load(groups, as_of)
    for group in groups:
        members = [cases[case_id] for case_id in group if case_id in cases and cases[case_id].reported_on <= as_of]
        if not members:
            continue
        events = []
        for case in members:
            if case.counted(as_of)[0]:
                reported[_label(case.reported_on)] -= 1
            event = case.return_event(as_of)
            if event is not None:
                repatriated[_label(event[0])] -= 1
                days[str((event[0] - case.reported_on).days)] -= 1
                events.append((event, case))
        if any(case.counted(as_of)[0] for case in members):
            earliest = min(members, key=lambda case: (case.reported_on, case.id))
            reported[_label(earliest.reported_on)] += 1
        if events:
            (occurred_on, _change_id, _via), case = min(events, key=lambda found: found[0][:2])
            repatriated[_label(occurred_on)] += 1
            days[str((occurred_on - case.reported_on).days)] += 1
    return len(groups)


def child_of_cases() -> dict[int, int]:
    """Each case confirmed as one child with others -> the child's key (the lowest case id of its group).

    A case missing from the mapping is a child of its own (its key is its id). One query.
    """
    return {case_id: group[0] for group in confirmed_groups() for case_id in group}
