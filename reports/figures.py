"""The figures of DESIGN.md section 4, computed in the database.

``compute_figures`` returns the exact JSON form of section 4 as of a date D;
``compute_figures_by_organisation`` also splits them by the organisation
that owns the cases, from the same pass. One SQL statement does the work
whatever the number of cases, in parallel on PostgreSQL; Python only places
its output, which is bounded by cells (oblast x sex x age band x month) and
by (intermediary x days to return) per organisation, never one row per case.

How the definitions become set-based SQL
----------------------------------------

The history of a case is a chain: the service (``casework.services``) locks
the case, refuses a date before the case's latest change or before its
report date, and records the case's current status as the change's
``from_status``. So, for every case:

  (I1) each change's ``from_status`` is the case's status just before it,
       i.e. the ``to_status`` of the previous change in (occurred_on, id)
       order, or ``reported`` for the first change;
  (I2) no change occurs before the case's ``reported_on``.

Under these invariants the definitions read as follows, and need neither a
sort of the history nor a row per case:

* reported(D) in a cell (oblast, sex, age band) = the cases of the cell
  reported on or before D, plus, for every change on or before D, +1 when
  it leaves a side status (duplicate, withdrawn) and -1 when it enters one.
  The same sums, grouped by the month of the report or of the change and
  accumulated month by month, give the monthly series: a change dated in a
  month counts at that month's end (at D in D's month), as the status on
  that day would.
* repatriated(D), by cell and by month: the same with +1 for a change that
  enters {repatriated, reunified} from outside it, -1 for one that leaves it.
* the return event of a case in repatriated(D) is the change on or before D
  that entered {repatriated, reunified} and that no later change on or
  before D took back out of it (moves in and out alternate, so the last
  entry is the return event exactly when no exit follows it). Joined to the
  few exits, the entries that none follows are counted by intermediary and
  by days to return, from which the median is read.

The check at the end compares two independent routes to the number
repatriated (the net moves into the returned statuses against the return
events): a history that breaks the chain around the returned statuses makes
the computation fail loudly instead of publishing a wrong number.
``tests/test_figures_definitions.py`` compares this module with a literal,
case-by-case reading of section 4, on hand-built and on random histories.
"""

# The SQL here is assembled from constants of the code (table names, status
# names, expressions); every value from outside is a query parameter.
# ruff: noqa: S608
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from accounts.models import Organisation
from casework.models import AGE_BANDS as CASE_AGE_BANDS
from casework.models import RETURNED_STATUSES, SIDE_STATUSES, UNKNOWN_AGE_BAND, Case, Oblast, Sex, StatusChange
from reports import children

# The bands of casework.models (the one rule), as keys in order, and their upper bounds (exclusive) in years.
AGE_BANDS: tuple[str, ...] = (*(key for _low, _high, key in CASE_AGE_BANDS), UNKNOWN_AGE_BAND)
_AGE_BAND_LIMITS: tuple[int, ...] = tuple(high + 1 for _low, high, _key in CASE_AGE_BANDS if high is not None)
UNATTRIBUTED = "unattributed"
SEX_KEYS: tuple[str, ...] = tuple(Sex.values)

Figures = dict[str, Any]
# Figures another app adds to a snapshot's exact figures under its own key (reports cannot import it):
# key -> function(as_of=, organisation_id=) giving the JSON value. partners adds "lists" when it starts.
ExtraFigures = Callable[..., Any]
_EXTRA: dict[str, ExtraFigures] = {}
# And what a release protects of them: key -> function(as_of=) giving the exact cells (reports.protection).
_EXTRA_SERIES: dict[str, ExtraFigures] = {}


def add_extra_figures(key: str, compute: ExtraFigures, *, release_series: ExtraFigures | None = None) -> None:
    _EXTRA[key] = compute
    if release_series is not None:
        _EXTRA_SERIES[key] = release_series


def with_extra_series(series: dict[str, Any], *, as_of: dt.date) -> dict[str, Any]:
    """A release's series with every other app's cells (read in the same transaction as the rest)."""
    for key, compute in _EXTRA_SERIES.items():
        series[key] = compute(as_of=as_of)
    return series


def with_extra_figures(
    exact: Figures, per_organisation: dict[int, Figures], *, as_of: dt.date
) -> tuple[Figures, dict[int, Figures]]:
    """The figures with every other app's additions, over all cases and per organisation (in the same read)."""
    for key, compute in _EXTRA.items():
        exact[key] = compute(as_of=as_of, organisation_id=None)
        for organisation_id, figures in per_organisation.items():
            figures[key] = compute(as_of=as_of, organisation_id=organisation_id)
    return exact, per_organisation


class FiguresInconsistent(RuntimeError):
    """The status history breaks the chain invariants, so the figures would be wrong."""


def month_label(month_key: int) -> str:
    return f"{month_key // 12:04d}-{month_key % 12 + 1:02d}"


def month_key(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


# --- SQL -------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """The few expressions that PostgreSQL and SQLite spell differently."""

    vendor: str

    def year(self, column: str) -> str:
        if self.vendor == "postgresql":
            return f"CAST(date_part('year', {column}) AS integer)"
        return f"CAST(strftime('%%Y', {column}) AS integer)"

    def month_key(self, column: str) -> str:
        if self.vendor == "postgresql":
            return f"CAST(date_part('year', {column}) * 12 + date_part('month', {column}) - 1 AS integer)"
        return f"(CAST(strftime('%%Y', {column}) AS integer) * 12 + CAST(strftime('%%m', {column}) AS integer) - 1)"

    def age_band(self, case: str) -> str:
        """The index in AGE_BANDS of the age at report: year of reported_on minus birth year."""
        age = f"({self.year(f'{case}.reported_on')} - {case}.birth_year)"
        if self.vendor == "postgresql":
            limits = ", ".join(str(limit) for limit in _AGE_BAND_LIMITS)
            known = f"width_bucket({age}, ARRAY[{limits}])"
        else:
            steps = " ".join(f"WHEN {age} < {limit} THEN {index}" for index, limit in enumerate(_AGE_BAND_LIMITS))
            known = f"CASE {steps} ELSE {len(_AGE_BAND_LIMITS)} END"
        return f"CASE WHEN {case}.birth_year IS NULL THEN {AGE_BANDS.index('unknown')} ELSE {known} END"

    def days_between(self, later: str, earlier: str) -> str:
        if self.vendor == "postgresql":
            return f"({later} - {earlier})"
        return f"CAST(julianday({later}) - julianday({earlier}) AS integer)"


def _in(values: Iterable[str]) -> str:
    # Status names are constants of the code, never input: safe to inline.
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"


_SIDE = _in(SIDE_STATUSES)
_RETURNED = _in(RETURNED_STATUSES)


def _moves(change: str) -> str:
    """The changes the figures count: into or out of a side status, or into or out of the returned statuses.

    Word for word the predicate of the partial index ``change_figures_moves`` (casework migration 0024),
    which PostgreSQL uses only for a statement whose conditions contain it: keep the two the same. The
    exits joined as ``x`` below are, as written, the predicate of ``change_figures_exits``. Through them
    one organisation's figures read its cases and, case by case, their moves: an index path whose cost
    follows the organisation, not the register (``tests/test_figures_scoped.py`` checks the plan).
    """
    return (
        f"((({change}.from_status IN {_SIDE}) <> ({change}.to_status IN {_SIDE})) "
        f"OR (({change}.from_status IN {_RETURNED}) <> ({change}.to_status IN {_RETURNED})))"
    )


_CASE = Case._meta.db_table
_CHANGE = StatusChange._meta.db_table

# The rows of the statement: a kind, and the keys that kind is grouped by.
CELLS, RETURNS = 0, 1


def _figures_sql(d: _Dialect, *, scoped: bool) -> str:
    """One aggregate over two kinds of rows, told apart by the first column.

    Kind 0, by (organisation, oblast, sex, age band, month): ``dr`` and ``dp``
    add up to reported and repatriated; the rows are the cases that exist
    on D (+1 reported, in the month of the report) and the changes on or
    before D that move a case into or out of a side status or the returned
    statuses (in the month of the change).

    Kind 1, by (organisation, intermediary id, days to return): the return
    events, counted. Each change that enters the returned statuses is read
    a second time as a kind 1 row, kept when no exit on or before D follows
    it (a left join to the exits: it matches nothing for a return event).

    No window, no CTE and no subplan: PostgreSQL runs all of it in parallel.
    """
    scope = "AND c.organisation_id = %s" if scoped else ""
    band, report_month = d.age_band("c"), d.month_key("c.reported_on")
    entering = f"s.to_status IN {_RETURNED} AND s.from_status NOT IN {_RETURNED}"
    cell = CELLS
    return f"""
        SELECT kind, organisation_id, oblast, sex, band, month, via_id, days, SUM(dr), SUM(dp), COUNT(*)
        FROM (
            SELECT {cell} AS kind, c.organisation_id, c.oblast, c.sex, {band} AS band, {report_month} AS month,
                CAST(NULL AS bigint) AS via_id, CAST(NULL AS integer) AS days, 1 AS dr, 0 AS dp
            FROM {_CASE} c
            WHERE c.reported_on <= %s {scope}
            UNION ALL
            SELECT k.kind, c.organisation_id,
                CASE WHEN k.kind = {cell} THEN c.oblast END,
                CASE WHEN k.kind = {cell} THEN c.sex END,
                CASE WHEN k.kind = {cell} THEN {band} END,
                CASE WHEN k.kind = {cell} THEN {d.month_key("s.occurred_on")} END,
                CASE WHEN k.kind = {RETURNS} THEN s.via_id END,
                CASE WHEN k.kind = {RETURNS} THEN {d.days_between("s.occurred_on", "c.reported_on")} END,
                CASE WHEN k.kind = {cell} THEN
                    CASE WHEN s.from_status IN {_SIDE} THEN 1 ELSE 0 END
                    - CASE WHEN s.to_status IN {_SIDE} THEN 1 ELSE 0 END
                ELSE 0 END,
                CASE WHEN k.kind = {cell} THEN
                    CASE WHEN s.to_status IN {_RETURNED} THEN 1 ELSE 0 END
                    - CASE WHEN s.from_status IN {_RETURNED} THEN 1 ELSE 0 END
                ELSE 0 END
            FROM {_CHANGE} s
            JOIN {_CASE} c ON c.id = s.case_id
            CROSS JOIN (SELECT column1 AS kind FROM (VALUES ({cell}), ({RETURNS})) AS kinds) k
            LEFT JOIN {_CHANGE} x ON x.case_id = s.case_id AND k.kind = {RETURNS}
                AND x.occurred_on <= %s AND x.from_status IN {_RETURNED} AND x.to_status NOT IN {_RETURNED}
                AND (x.occurred_on > s.occurred_on OR (x.occurred_on = s.occurred_on AND x.id > s.id))
            WHERE s.occurred_on <= %s {scope}
                AND {_moves("s")}
                AND (k.kind = {cell} OR ({entering}))
                -- A return event: an entry into the returned statuses that no exit on or before D follows.
                AND (k.kind = {cell} OR x.id IS NULL)
        ) rows
        GROUP BY kind, organisation_id, oblast, sex, band, month, via_id, days
    """


# --- assembly ----------------------------------------------------------------


class _Tally:
    """The figures of one scope (all cases, or one organisation's) while rows are added up."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
        self.reported_by_month: dict[int, int] = defaultdict(int)
        self.returned_by_month: dict[int, int] = defaultdict(int)
        self.by_via: dict[int | None, int] = defaultdict(int)
        self.days: dict[int, int] = defaultdict(int)
        # Cases, before confirmed links made children of them (register-wide figures only; else the totals).
        self.records: dict[str, int] | None = None

    def totals(self) -> dict[str, int]:
        return {
            "reported": sum(reported for reported, _repatriated in self.cells.values()),
            "repatriated": sum(repatriated for _reported, repatriated in self.cells.values()),
        }

    def add(self, row: Sequence[Any]) -> None:
        kind, _organisation, oblast, sex, band, month, via, days, reported, repatriated, count = row
        if kind == CELLS:
            self.cells[oblast, sex, band][0] += reported
            self.cells[oblast, sex, band][1] += repatriated
            self.reported_by_month[month] += reported
            self.returned_by_month[month] += repatriated
        else:
            self.by_via[via] += count
            self.days[days] += count

    def figures(self, *, as_of: dt.date, slugs: dict[int, str], intermediaries: Sequence[str]) -> Figures:
        by_oblast: dict[str, dict[str, int]] = defaultdict(_pair)
        by_sex: dict[str, dict[str, int]] = defaultdict(_pair)
        by_band: dict[str, dict[str, int]] = defaultdict(_pair)
        reported_total = repatriated_total = 0
        for (oblast, sex, band), (reported, repatriated) in self.cells.items():
            for breakdown, key in ((by_oblast, oblast), (by_sex, sex), (by_band, AGE_BANDS[band])):
                breakdown[key]["reported"] += reported
                breakdown[key]["repatriated"] += repatriated
            reported_total += reported
            repatriated_total += repatriated
        by_via: dict[str, int] = defaultdict(int)
        for via, count in self.by_via.items():
            by_via[UNATTRIBUTED if via is None else slugs[via]] += count
        monthly = _monthly(self.reported_by_month, self.returned_by_month, as_of=as_of)
        _check(monthly=monthly, repatriated_total=repatriated_total, return_events=sum(self.days.values()), as_of=as_of)
        via_keys = [*sorted(set(intermediaries) | set(by_via) - {UNATTRIBUTED}), UNATTRIBUTED]
        return {
            "as_of": as_of.isoformat(),
            "published": False,
            "min_cell": None,
            "totals": {
                "reported": reported_total,
                "repatriated": repatriated_total,
                "outstanding": reported_total - repatriated_total,
            },
            "records": self.records or {"reported": reported_total, "repatriated": repatriated_total},
            "by_oblast": _ordered(Oblast.values, by_oblast, keep_empty=False),
            "by_sex": _ordered(SEX_KEYS, by_sex, keep_empty=True),
            "by_age_band": _ordered(AGE_BANDS, by_band, keep_empty=True),
            "by_via": {key: by_via.get(key, 0) for key in via_keys},
            "monthly": monthly,
            "median_days_to_return": _median(self.days),
        }


def _pair() -> dict[str, int]:
    return {"reported": 0, "repatriated": 0}


def _ordered(keys: Sequence[str], cells: dict[str, dict[str, int]], *, keep_empty: bool) -> dict[str, dict[str, int]]:
    ordered = {key: cells.get(key, _pair()) for key in keys}
    if keep_empty:
        return ordered
    return {key: value for key, value in ordered.items() if value["reported"] or value["repatriated"]}


def _median(histogram: dict[int, int]) -> float | None:
    """The median of a multiset given as value -> count (the mean of the middle two for an even count)."""
    count = sum(histogram.values())
    if not count:
        return None
    middle = [(count - 1) // 2, count // 2]  # 0-based ranks of the middle value(s)
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while middle and middle[0] < seen:
            found.append(value)
            middle.pop(0)
    return (found[0] + found[1]) / 2


def _tally(
    *, as_of: dt.date, organisation_id: int | None, split: bool = False
) -> tuple[_Tally, dict[int, _Tally], dict[int, str], list[str]]:
    """The rows of the statement added up over the scope, and by organisation when ``split``."""
    dialect = _Dialect(connection.vendor)
    scoped = organisation_id is not None
    scope: list[Any] = [organisation_id] if scoped else []
    total = _Tally()
    by_organisation: dict[int, _Tally] = defaultdict(_Tally)
    vias: set[int] = set()
    with connection.cursor() as cursor:
        cursor.execute(_figures_sql(dialect, scoped=scoped), [as_of, *scope, as_of, as_of, *scope])
        for row in cursor.fetchall():
            total.add(row)
            if split:
                by_organisation[row[1]].add(row)
            if row[0] == RETURNS and row[6] is not None:
                vias.add(row[6])
    if not scoped:
        # Register-wide figures count children (DESIGN.md section 4); an organisation's count its cases.
        total.records = total.totals()
        children.count_children(total, as_of=as_of, bands=AGE_BANDS)
    slugs: dict[int, str] = {}
    intermediaries: list[str] = []
    for pk, slug, kind in Organisation.objects.filter(
        Q(kind=Organisation.Kind.INTERMEDIARY) | Q(pk__in=vias)
    ).values_list("pk", "slug", "kind"):
        slugs[pk] = slug
        if kind == Organisation.Kind.INTERMEDIARY:
            intermediaries.append(slug)
    return total, by_organisation, slugs, intermediaries


def compute_figures(*, as_of: dt.date, organisation_id: int | None = None) -> Figures:
    """The exact figures of DESIGN.md section 4 as of ``as_of``, over all cases or one organisation's.

    Two queries whatever the number of cases. Run it inside ``consistent_read``
    when it must see the same data as other statements.
    """
    total, _by_organisation, slugs, intermediaries = _tally(as_of=as_of, organisation_id=organisation_id)
    return total.figures(as_of=as_of, slugs=slugs, intermediaries=intermediaries)


def compute_figures_by_organisation(*, as_of: dt.date) -> tuple[Figures, dict[int, Figures]]:
    """The exact figures over all cases, and those of each organisation that has cases, from one pass."""
    total, by_organisation, slugs, intermediaries = _tally(as_of=as_of, organisation_id=None, split=True)
    return (
        total.figures(as_of=as_of, slugs=slugs, intermediaries=intermediaries),
        {
            organisation: tally.figures(as_of=as_of, slugs=slugs, intermediaries=intermediaries)
            for organisation, tally in by_organisation.items()
        },
    )


# --- the series a release protects ----------------------------------------------------------

# The rows of the release series' statement.
REPORT_MONTHS, RETURN_EVENTS = 0, 1


def _release_series_sql(d: _Dialect) -> str:
    """Children in reported(D) by month of report, and return events by month and days to return.

    Kind 0, by month of report: +1 for every case that exists on D, and for every change on or before D
    +1 when it leaves a side status, -1 when it enters one (the same sums as the figures' cells, grouped
    by the month of the case's report instead of the month of the change). Kind 1: the return events
    (an entry into the returned statuses that no exit on or before D follows), by month and days. The
    changes are read once for both kinds, as in the figures' statement.
    """
    report_month = d.month_key("c.reported_on")
    side_move = f"(s.from_status IN {_SIDE}) <> (s.to_status IN {_SIDE})"
    entering = f"s.to_status IN {_RETURNED} AND s.from_status NOT IN {_RETURNED}"
    return f"""
        SELECT kind, month, days, SUM(n)
        FROM (
            SELECT {REPORT_MONTHS} AS kind, {report_month} AS month, CAST(NULL AS integer) AS days, 1 AS n
            FROM {_CASE} c
            WHERE c.reported_on <= %s
            UNION ALL
            SELECT k.kind,
                CASE WHEN k.kind = {REPORT_MONTHS} THEN {report_month} ELSE {d.month_key("s.occurred_on")} END,
                CASE WHEN k.kind = {RETURN_EVENTS} THEN {d.days_between("s.occurred_on", "c.reported_on")} END,
                CASE WHEN k.kind = {REPORT_MONTHS} THEN
                    CASE WHEN s.from_status IN {_SIDE} THEN 1 ELSE 0 END
                    - CASE WHEN s.to_status IN {_SIDE} THEN 1 ELSE 0 END
                ELSE 1 END
            FROM {_CHANGE} s
            JOIN {_CASE} c ON c.id = s.case_id
            CROSS JOIN (SELECT column1 AS kind FROM (VALUES ({REPORT_MONTHS}), ({RETURN_EVENTS})) AS kinds) k
            LEFT JOIN {_CHANGE} x ON x.case_id = s.case_id AND k.kind = {RETURN_EVENTS}
                AND x.occurred_on <= %s AND x.from_status IN {_RETURNED} AND x.to_status NOT IN {_RETURNED}
                AND (x.occurred_on > s.occurred_on OR (x.occurred_on = s.occurred_on AND x.id > s.id))
            WHERE s.occurred_on <= %s
                AND {_moves("s")}
                AND ((k.kind = {REPORT_MONTHS} AND {side_move})
                    OR (k.kind = {RETURN_EVENTS} AND {entering} AND x.id IS NULL))
        ) rows
        GROUP BY kind, month, days
    """


def compute_release_series(*, as_of: dt.date, expected: Figures | None = None) -> dict[str, Any]:
    """What a release protects beyond the figures: every child in one cell of each series (reports.protection).

    ``reported_by_month``: the cases in reported(D), by month of their report
    (YYYY-MM); ``repatriated_by_month``: the cases in repatriated(D), by
    month of their return event; ``days_to_return``: the same, by days from
    report to return event (the day count as a string, for JSON). One
    statement. ``expected``: exact figures read in the same transaction, which
    these must add up to (else FiguresInconsistent).
    """
    reported: dict[str, int] = defaultdict(int)
    repatriated: dict[str, int] = defaultdict(int)
    days: dict[str, int] = defaultdict(int)
    with connection.cursor() as cursor:
        cursor.execute(_release_series_sql(_Dialect(connection.vendor)), [as_of, as_of, as_of])
        for kind, month, day_count, count in cursor.fetchall():
            if kind == REPORT_MONTHS:
                reported[month_label(month)] += int(count)
            else:
                repatriated[month_label(month)] += int(count)
                days[str(day_count)] += int(count)
    # Children, not records, like the register-wide figures they must add up to.
    children.count_children_in_release_series(reported, repatriated, days, as_of=as_of)
    series = {
        "reported_by_month": {key: value for key, value in sorted(reported.items()) if value},
        "repatriated_by_month": {key: value for key, value in sorted(repatriated.items()) if value},
        "days_to_return": {key: value for key, value in sorted(days.items(), key=lambda item: int(item[0])) if value},
    }
    if expected is not None and (
        sum(reported.values()) != expected["totals"]["reported"]
        or sum(repatriated.values()) != expected["totals"]["repatriated"]
        or any(value < 0 for value in (*reported.values(), *repatriated.values(), *days.values()))
    ):
        raise FiguresInconsistent(
            f"The release series as of {as_of.isoformat()} do not add up to the figures: "
            f"{sum(reported.values())} reported and {sum(repatriated.values())} repatriated by month, against "
            f"{expected['totals']['reported']} and {expected['totals']['repatriated']}."
        )
    return series


def _monthly(reported: dict[int, int], returned: dict[int, int], *, as_of: dt.date) -> list[dict[str, Any]]:
    """Cumulative values at each month's end (D in D's month), from the earliest report's month."""
    if not reported:
        return []
    # Every case that exists on D adds one to the month of its report, and no
    # change precedes a report (I2), so the first key is the month of the
    # earliest report (section 4), whatever the case's status.
    first, last = min(reported), month_key(as_of)
    series = []
    reported_sum = returned_sum = 0
    for month in range(first, last + 1):
        reported_sum += reported.get(month, 0)
        returned_sum += returned.get(month, 0)
        series.append({"month": month_label(month), "reported": reported_sum, "repatriated": returned_sum})
    return series


def _check(*, monthly: list[dict[str, Any]], repatriated_total: int, return_events: int, as_of: dt.date) -> None:
    if repatriated_total != return_events or any(month["repatriated"] < 0 for month in monthly):
        raise FiguresInconsistent(
            f"The status history as of {as_of.isoformat()} is not a chain of moves: the moves into and out of "
            f"the returned statuses add up to {repatriated_total} repatriated, but there are {return_events} "
            "return events. Look for status changes whose 'from' status is not the status before them."
        )


@contextmanager
def consistent_read() -> Iterator[None]:
    """A transaction in which every statement sees the same data.

    On PostgreSQL: REPEATABLE READ, so that the fingerprint, the figures and
    the per-organisation figures all describe one state of the register; no
    JIT (compiling these plans costs more than it saves); enough memory for
    the aggregates to stay in memory. Nested inside another transaction it
    joins it as it is (the isolation level can only be set at the start).
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def data_fingerprint() -> dict[str, Any]:
    """What the figures were computed from: counts and high-water marks of the case tables (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {_CASE}), (SELECT COUNT(*) FROM {_CHANGE}), "
            f"(SELECT MAX(id) FROM {_CHANGE}), (SELECT MAX(updated_at) FROM {_CASE})"
        )
        cases, changes, last_change_id, last_case_update = cursor.fetchone()
    if isinstance(last_case_update, str):  # SQLite: the text Django stored, in UTC
        last_case_update = dt.datetime.fromisoformat(last_case_update)
    if last_case_update is not None and last_case_update.tzinfo is None:
        last_case_update = last_case_update.replace(tzinfo=dt.UTC)
    return {
        "cases": cases,
        "status_changes": changes,
        "last_status_change_id": last_change_id,
        "last_case_update": last_case_update,
    }
