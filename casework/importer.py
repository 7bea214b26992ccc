"""Importing an organisation's cases and their status history from CSV files.

Two steps, so that any door (``manage.py import_cases`` now, an upload form
later) can show every problem before anything is written:

- ``plan_import`` reads and checks both files. Case fields are checked by
  ``services.validate_case_values`` and each case's status changes are
  replayed in memory, in file order, through ``services.check_move``: the
  rules live in the service, not here. It raises ``ImportErrors`` listing
  every problem (file, line, column, reason), or returns an ``ImportPlan``.
- ``apply_import`` writes a plan in one transaction: with COPY on
  PostgreSQL (no model instances, ids drawn from the sequence first), with
  ``bulk_create`` in batches elsewhere.

The organisation's own reference for a case (``source_ref``) is kept only as
a keyed hash (``linkage_digest``); it is never written to the database and
never repeated in messages.

Lookups (institutions, intermediaries, source_refs imported earlier,
references already taken) are made in bulk: the cost of an import does not
grow with one query per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Never

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from accounts.models import Organisation
from casework.models import Case, DisplacedPrecision, Institution, Placement, Source, Status, StatusChange
from casework.references import new_references
from casework.screening import linkage_digest
from casework.services import Move, check_move, validate_case_values

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = [
    "CASE_COLUMNS",
    "EVENT_COLUMNS",
    "ImportErrors",
    "ImportPlan",
    "ImportProblem",
    "ImportResult",
    "apply_import",
    "plan_import",
]

# A path, or an open binary file (e.g. an uploaded file) whose ``name`` names it in messages.
ImportSource = str | os.PathLike[str] | IO[bytes]

SOURCE_REF_KIND = "source_ref"
RECORDED_VIA = "import"

CASE_COLUMNS: tuple[str, ...] = (
    "source_ref",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "source",
)
CASE_REQUIRED: frozenset[str] = frozenset({"source_ref", "sex", "oblast", "reported_on"})
EVENT_COLUMNS: tuple[str, ...] = ("source_ref", "status", "occurred_on", "via", "duplicate_of", "note")
EVENT_REQUIRED: frozenset[str] = frozenset({"source_ref", "status", "occurred_on"})

# check_move and validate_case_values name model fields; the files name columns.
_MOVE_FIELD_COLUMNS = {"to_status": "status"}
_CASE_FIELD_COLUMNS = {"displaced_precision": "displaced_on"}

_CODE_LISTS: dict[str, list[str]] = {"placement": Placement.values, "source": Source.values}
# Choices' ``values`` is rebuilt on every access: too slow to ask per row.
_STATUSES: frozenset[str] = frozenset(Status.values)

_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_MONTH_RE = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
_YEAR_RE = re.compile(r"\d{4}", re.ASCII)

# Rows per INSERT; large batches keep the number of round trips low.
DEFAULT_BATCH_SIZE = 5000
# How many rows pass between two progress bar updates (updating per row costs more than the row).
_PROGRESS_STEP = 1000


# --- results and errors ------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One reason a file cannot be imported. (Not named ImportError: that is a Python builtin.)"""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class ImportErrors(Exception):
    """The files cannot be imported; ``errors`` lists every problem found. Nothing was written."""

    def __init__(self, errors: Sequence[ImportProblem]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass(slots=True)
class PlannedCase:
    line: int
    source_ref_hash: str
    sex: str
    birth_year: int | None
    oblast: str
    reported_on: dt.date
    displaced_on: dt.date | None
    displaced_precision: str
    placement: str
    institution_id: int | None
    source: str
    # After replaying the case's events.
    status: str = Status.REPORTED.value
    version: int = 1


class PlannedEvent(NamedTuple):  # a tuple: tens of thousands are made, and quickly
    line: int
    case_index: int  # into ImportPlan.cases
    from_status: str
    to_status: str
    occurred_on: dt.date
    via_id: int | None
    # The surviving case of a duplicate: a case of this file (an index) or one imported earlier (an id).
    duplicate_of_index: int | None
    duplicate_of_id: int | None
    note: str
    is_correction: bool
    version: int


@dataclass(frozen=True)
class ImportPlan:
    """Checked files, ready for ``apply_import``."""

    organisation: Organisation
    cases_file: str
    events_file: str | None
    cases: list[PlannedCase]
    events: list[PlannedEvent]


@dataclass(frozen=True)
class ImportResult:
    cases: int
    events: int


# --- reading CSV ---------------------------------------------------------------


class _Problems:
    """The problems of one file, kept in line and column order whatever order they are found in."""

    def __init__(self, name: str, columns: Sequence[str]) -> None:
        self.name = name
        self._rank = {column: rank for rank, column in enumerate(columns)}
        self._found: list[tuple[int, int, int, ImportProblem]] = []

    def add(self, line: int | None, column: str | None, message: str) -> None:
        problem = ImportProblem(file=self.name, line=line, column=column, message=message)
        rank = self._rank.get(column, -1) if column else -1
        self._found.append((line or 0, rank, len(self._found), problem))

    def __bool__(self) -> bool:
        return bool(self._found)

    def sorted(self) -> list[ImportProblem]:
        return [problem for *_key, problem in sorted(self._found, key=lambda found: found[:3])]


@dataclass
class _Table:
    """A CSV file's data rows as ``(line, {column: stripped value})``; the header is line 1."""

    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _display_name(source: ImportSource, default: str) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) and name else default


def _read_text(source: ImportSource, problems: _Problems) -> str | None:
    try:
        data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) else source.read()
    except OSError as exc:
        problems.add(None, None, _("Cannot read the file: %(error)s.") % {"error": exc.strerror or exc})
        return None
    try:
        # utf-8-sig: spreadsheet programs often start "CSV UTF-8" files with a byte order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(
            data[: exc.start].count(b"\n") + 1,
            None,
            _("The file is not UTF-8 text (invalid bytes on this line). Save it as “CSV UTF-8” and try again."),
        )
        return None


def _read_table(
    source: ImportSource, *, problems: _Problems, columns: Sequence[str], required: frozenset[str]
) -> _Table | None:
    """Read a CSV file; report problems with the file and its header and return None if it cannot be used."""
    text = _read_text(source, problems)
    if text is None:
        return None
    listing = ", ".join(columns)
    if not text.strip():
        problems.add(
            None,
            None,
            _("The file is empty: its first line must name the columns (%(columns)s).") % {"columns": listing},
        )
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous = 0  # a quoted value may span lines: a row starts after the previous one ends
    try:
        header = [name.strip().lower() for name in next(reader)]
        if not set(header) & set(columns):
            problems.add(
                1, None, _("The first line must name the columns (%(columns)s); it does not.") % {"columns": listing}
            )
            return None
        seen: set[str] = set()
        for position, name in enumerate(header, start=1):
            if not name:
                problems.add(1, None, _("Column %(position)s has no name.") % {"position": position})
            elif name in seen:
                problems.add(1, name, _("This column appears more than once."))
            elif name not in columns:
                problems.add(1, name, _("Unknown column. The columns are: %(columns)s.") % {"columns": listing})
            seen.add(name)
        for name in columns:
            if name in required and name not in seen:
                problems.add(1, name, _("Missing column."))
        if problems:
            return None
        absent = {name: "" for name in columns if name not in seen}
        width = len(header)
        table = _Table()
        previous = reader.line_num
        rows = table.rows
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            values = list(map(str.strip, cells))
            if not any(values):
                continue  # a blank line
            if len(values) != width:
                problems.add(
                    line,
                    None,
                    _("This line has %(found)s fields; the header has %(expected)s.")
                    % {"found": len(values), "expected": width},
                )
                continue
            row = dict(zip(header, values, strict=True))
            if absent:
                row.update(absent)
            rows.append((line, row))
    except csv.Error as exc:
        problems.add(
            previous + 1,
            None,
            _("Malformed CSV from this line on (%(error)s); the rest of the file was not read.") % {"error": exc},
        )
        return None
    return table


# --- parsing values ------------------------------------------------------------


def _parse_day(value: str) -> dt.date:
    """A ``YYYY-MM-DD`` date; ``ValueError`` with a message for the file's author otherwise."""
    # fromisoformat is fast but also takes other ISO 8601 forms (20230131, 2023-W05-2): check the shape first.
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            if _DAY_RE.fullmatch(value):
                raise ValueError(_("This is not a real date: check the day and the month.")) from None
    raise ValueError(_("Give the date as YYYY-MM-DD, e.g. 2023-01-31."))


def _parse_displaced(value: str) -> tuple[dt.date, str]:
    """``YYYY-MM`` (kept as the 1st of the month) or ``YYYY-MM-DD``, with its precision."""
    month = _MONTH_RE.fullmatch(value)
    if month is not None:
        try:
            return dt.date(int(month[1]), int(month[2]), 1), DisplacedPrecision.MONTH.value
        except ValueError:
            raise ValueError(_("This is not a real month.")) from None
    if _DAY_RE.fullmatch(value) is None:
        raise ValueError(_("Give the month as YYYY-MM or the day as YYYY-MM-DD, or leave it empty."))
    return _parse_day(value), DisplacedPrecision.DAY.value


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _filter_in(queryset: QuerySet[Case], field_name: str, values: Collection[str]) -> Iterator[QuerySet[Case]]:
    """``queryset`` filtered on ``field_name`` being one of ``values``: in one query or in a few."""
    queryset = queryset.order_by()
    if connection.vendor == "postgresql":
        # One array parameter: thousands of placeholders cost more to send and to plan.
        yield queryset.filter(**{f"{field_name}__in": RawSQL("SELECT unnest(%s::text[])", [list(values)])})
        return
    # SQLite limits the number of parameters in one query.
    size = (connection.features.max_query_params or 1000) - 10
    for chunk in _chunks(sorted(values), size):
        yield queryset.filter(**{f"{field_name}__in": chunk})


@dataclass(frozen=True, slots=True)
class _Earlier:
    """A case this organisation imported before, found by its source_ref hash."""

    id: int
    reference: str
    status: str


def _earlier_imports(organisation: Organisation, hashes: Iterable[str]) -> dict[str, _Earlier]:
    """The cases this organisation imported before whose source_ref hash is one of ``hashes``."""
    imported = Case.objects.filter(organisation=organisation, source_ref_hash__isnull=False)
    found: dict[str, _Earlier] = {}
    for queryset in _filter_in(imported, "source_ref_hash", set(hashes)):
        for digest, pk, reference, status in queryset.values_list("source_ref_hash", "id", "reference", "status"):
            if digest is not None:
                found[digest] = _Earlier(id=pk, reference=reference, status=status)
    return found


def _taken_references(candidates: Iterable[str]) -> set[str]:
    taken: set[str] = set()
    for queryset in _filter_in(Case.objects.all(), "reference", set(candidates)):
        taken.update(queryset.values_list("reference", flat=True))
    return taken


def _progress_bar(progress: SupportsWrite[str] | None, *, total: int, desc: str) -> tqdm[Never]:
    # disable=None hides the bar when the stream is not a terminal; delay keeps small files quiet.
    return tqdm(
        total=total,
        desc=desc,
        unit=" rows",
        file=progress,
        disable=True if progress is None else None,
        delay=0.5,
        leave=False,
        dynamic_ncols=True,
    )


def _with_codes(column: str, message: str) -> str:
    """Add the accepted codes to a message about a coded column: a file's author needs the codes, not labels."""
    codes = _CODE_LISTS.get(column)
    if codes is None:
        return message
    return _("%(message)s Use one of: %(codes)s, or leave it empty.") % {"message": message, "codes": ", ".join(codes)}


# --- planning ------------------------------------------------------------------


@dataclass(slots=True)
class _CaseState:
    """A case of the file while its events are replayed.

    Kept for refused rows too, so that their events are still checked and one
    mistake gives one error rather than a cascade of "unknown case".
    """

    line: int
    digest: str
    reported_on: dt.date | None = None
    planned: PlannedCase | None = None
    index: int | None = None  # into the plan's cases, when the row is valid
    status: str = Status.REPORTED.value
    version: int = 1
    last_occurred_on: dt.date | None = None


class _Planner:
    def __init__(self, *, organisation: Organisation, today: dt.date, cases: _Problems, events: _Problems) -> None:
        self.organisation = organisation
        self.today = today
        self.case_problems = cases
        self.event_problems = events
        self.states: dict[str, _CaseState] = {}
        self.cases: list[PlannedCase] = []
        self.events: list[PlannedEvent] = []
        self._digests: dict[str, str] = {}
        self._earlier: dict[str, _Earlier] = {}
        self._institutions: dict[str, int] = {}
        self._organisations: dict[str, Organisation] = {}

    def digest(self, source_ref: str) -> str:
        # The events repeat the cases' source_refs: hash each value once.
        digest = self._digests.get(source_ref)
        if digest is None:
            digest = self._digests[source_ref] = linkage_digest(source_ref, kind=SOURCE_REF_KIND)
        return digest

    def look_up(self, cases: _Table, events: _Table | None) -> None:
        """Everything the rows refer to, in a few bulk queries."""
        hashes = {self.digest(row["source_ref"]) for _line, row in cases.rows if row["source_ref"]}
        codes = {row["institution"] for _line, row in cases.rows if row["institution"]}
        slugs: set[str] = set()
        if events is not None:
            hashes |= {self.digest(row["duplicate_of"]) for _line, row in events.rows if row["duplicate_of"]}
            slugs = {row["via"] for _line, row in events.rows if row["via"]}
        self._earlier = _earlier_imports(self.organisation, hashes)
        if codes:
            self._institutions = dict(Institution.objects.filter(code__in=codes).values_list("code", "id"))
        if slugs:
            self._organisations = {org.slug: org for org in Organisation.objects.filter(slug__in=slugs)}

    def check_case(self, line: int, row: dict[str, str]) -> None:
        errors: dict[str, str] = {}  # a column's own problem; the service's rules are not asked about it again

        state: _CaseState | None = None
        if not row["source_ref"]:
            errors["source_ref"] = _("Give the case's reference in your organisation's own records.")
        else:
            digest = self.digest(row["source_ref"])
            first = self.states.get(digest)
            earlier = self._earlier.get(digest)
            if first is not None:
                errors["source_ref"] = _(
                    "The same source_ref as line %(line)s (letter case and spacing are ignored)."
                ) % {"line": first.line}
            else:
                state = self.states[digest] = _CaseState(line=line, digest=digest)
                if earlier is not None:
                    errors["source_ref"] = _(
                        "%(organisation)s imported this source_ref before (case %(reference)s)."
                    ) % {"organisation": self.organisation.slug, "reference": earlier.reference}

        reported_on = birth_year = displaced_on = None
        precision = ""
        if row["reported_on"]:
            try:
                reported_on = _parse_day(row["reported_on"])
            except ValueError as exc:
                errors["reported_on"] = str(exc)
        if row["birth_year"]:
            if _YEAR_RE.fullmatch(row["birth_year"]):
                birth_year = int(row["birth_year"])
            else:
                errors["birth_year"] = _("Give the birth year as a number, e.g. 2012, or leave it empty.")
        if row["displaced_on"]:
            try:
                displaced_on, precision = _parse_displaced(row["displaced_on"])
            except ValueError as exc:
                errors["displaced_on"] = str(exc)
        institution_id = None
        if row["institution"]:
            institution_id = self._institutions.get(row["institution"])
            if institution_id is None:
                errors["institution"] = _("No institution has the code “%(code)s”.") % {"code": row["institution"]}

        values = {
            "sex": row["sex"],
            "birth_year": birth_year,
            "oblast": row["oblast"],
            "reported_on": reported_on,
            "displaced_on": displaced_on,
            "displaced_precision": precision,
            "placement": row["placement"],
            "source": row["source"],
        }
        rules = validate_case_values(values, today=self.today)
        for column, message in errors.items():
            self.case_problems.add(line, column, message)
        for name, messages in rules.items():
            column = _CASE_FIELD_COLUMNS.get(name, name)
            if column not in errors:
                for message in messages:
                    self.case_problems.add(line, column, _with_codes(column, message))

        if state is None:
            return
        state.reported_on = reported_on
        if errors or rules or reported_on is None:
            return
        state.index = len(self.cases)
        state.planned = PlannedCase(
            line=line,
            source_ref_hash=state.digest,
            sex=row["sex"],
            birth_year=birth_year,
            oblast=row["oblast"],
            reported_on=reported_on,
            displaced_on=displaced_on,
            displaced_precision=precision,
            placement=row["placement"],
            institution_id=institution_id,
            source=row["source"],
        )
        self.cases.append(state.planned)

    def check_event(self, line: int, row: dict[str, str], *, cases_file: str) -> None:
        errors: dict[str, str] = {}  # a column's own problem; the service's rules are not asked about it again

        state = None
        if not row["source_ref"]:
            errors["source_ref"] = _("Give the source_ref of the case this change is for.")
        else:
            state = self.states.get(self.digest(row["source_ref"]))
            if state is None:
                errors["source_ref"] = _("No case with this source_ref in %(file)s.") % {"file": cases_file}

        to_status = row["status"]
        occurred_on = None
        if row["occurred_on"]:
            try:
                occurred_on = _parse_day(row["occurred_on"])
            except ValueError as exc:
                errors["occurred_on"] = str(exc)
        via = None
        if row["via"]:
            via = self._organisations.get(row["via"])
            if via is None:
                errors["via"] = _("No organisation has the slug “%(slug)s”.") % {"slug": row["via"]}
        survivor: _CaseState | _Earlier | None = None
        if row["duplicate_of"] and to_status == Status.DUPLICATE:
            digest = self.digest(row["duplicate_of"])
            survivor = self.states.get(digest) or self._earlier.get(digest)
            if survivor is None:
                errors["duplicate_of"] = _(
                    "No case with this source_ref in %(file)s or imported earlier by %(organisation)s."
                ) % {"file": cases_file, "organisation": self.organisation.slug}

        if state is None:
            # Without its case the change cannot be replayed; say what can be said of the row itself.
            if to_status not in _STATUSES:
                errors["status"] = _("“%(status)s” is not a status.") % {"status": to_status}
            for column, message in errors.items():
                self.event_problems.add(line, column, message)
            return

        move = Move(
            current=state.status,
            to=to_status,
            occurred_on=occurred_on,
            # A missing report date is its case row's problem; it must not give a second error here.
            reported_on=state.reported_on or dt.date.min,
            last_occurred_on=state.last_occurred_on,
            via=via,
            note=row["note"],
            duplicate_of_given=bool(row["duplicate_of"]),
            duplicate_of_is_self=survivor is state,
            duplicate_of_status=survivor.status if survivor is not None else None,
            duplicate_of_same_organisation=True,  # only this organisation's cases are looked up
        )
        is_correction = False
        rules: dict[str, list[str]] = {}
        try:
            is_correction = check_move(move, can_correct=True, today=self.today)
        except ValidationError as exc:
            rules = exc.message_dict
        for column, message in errors.items():
            self.event_problems.add(line, column, message)
        for name, messages in rules.items():
            column = _MOVE_FIELD_COLUMNS.get(name, name)
            if column not in errors:
                for message in messages:
                    self.event_problems.add(line, column, message)

        if not errors and not rules and occurred_on is not None and state.index is not None:
            self.events.append(
                PlannedEvent(
                    line=line,
                    case_index=state.index,
                    from_status=state.status,
                    to_status=to_status,
                    occurred_on=occurred_on,
                    via_id=via.pk if via is not None else None,
                    duplicate_of_index=survivor.index if isinstance(survivor, _CaseState) else None,
                    duplicate_of_id=survivor.id if isinstance(survivor, _Earlier) else None,
                    note=row["note"],
                    is_correction=is_correction,
                    version=state.version + 1,
                )
            )
        # Move on to the state the file meant even when the row is refused, so that the next row is
        # judged on its own merits: one mistake gives one error, not a cascade.
        if to_status in _STATUSES:
            state.status = to_status
            state.version += 1
        if occurred_on is not None and (state.last_occurred_on is None or occurred_on > state.last_occurred_on):
            state.last_occurred_on = occurred_on

    def finish(self) -> None:
        for state in self.states.values():
            if state.planned is not None:
                state.planned.status = state.status
                state.planned.version = state.version


def plan_import(
    *,
    cases_file: ImportSource,
    events_file: ImportSource | None = None,
    organisation: Organisation,
    today: dt.date | None = None,
    progress: SupportsWrite[str] | None = None,
) -> ImportPlan:
    """Read and check the files; raise ``ImportErrors`` listing every problem, or return what to write.

    ``progress``: a stream (usually ``sys.stderr``) for a progress bar, shown only if it is a terminal.
    """
    today = today or timezone.localdate()
    cases_name = _display_name(cases_file, "cases.csv")
    events_name = _display_name(events_file, "events.csv") if events_file is not None else None
    case_problems = _Problems(cases_name, CASE_COLUMNS)
    event_problems = _Problems(events_name or "events.csv", EVENT_COLUMNS)

    cases = _read_table(cases_file, problems=case_problems, columns=CASE_COLUMNS, required=CASE_REQUIRED)
    events = None
    if events_file is not None:
        events = _read_table(events_file, problems=event_problems, columns=EVENT_COLUMNS, required=EVENT_REQUIRED)
    if cases is not None and not cases.rows:
        case_problems.add(None, None, _("The file has a header but no cases."))
    if cases is None or not cases.rows:
        # A file that cannot be read, or whose columns are wrong, says nothing reliable about its rows.
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())

    planner = _Planner(organisation=organisation, today=today, cases=case_problems, events=event_problems)
    planner.look_up(cases, events)
    event_rows = events.rows if events is not None else []
    with _progress_bar(progress, total=len(cases.rows) + len(event_rows), desc=_("Checking")) as bar:
        for done, (line, row) in enumerate(cases.rows, start=1):
            planner.check_case(line, row)
            if done % _PROGRESS_STEP == 0:
                bar.update(_PROGRESS_STEP)
        bar.update(len(cases.rows) % _PROGRESS_STEP)
        for done, (line, row) in enumerate(event_rows, start=1):
            planner.check_event(line, row, cases_file=cases_name)
            if done % _PROGRESS_STEP == 0:
                bar.update(_PROGRESS_STEP)
    if case_problems or event_problems or (events_file is not None and events is None):
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())
    planner.finish()
    return ImportPlan(
        organisation=organisation,
        cases_file=cases_name,
        events_file=events_name,
        cases=planner.cases,
        events=planner.events,
    )


# --- writing -------------------------------------------------------------------


def _recheck(plan: ImportPlan) -> None:
    """Refuse a plan that was overtaken: a source_ref imported meanwhile, a surviving case now a duplicate."""
    case_problems = _Problems(plan.cases_file, CASE_COLUMNS)
    event_problems = _Problems(plan.events_file or "events.csv", EVENT_COLUMNS)
    found = _earlier_imports(plan.organisation, (case.source_ref_hash for case in plan.cases))
    for case in plan.cases:
        if case.source_ref_hash in found:
            case_problems.add(
                case.line,
                "source_ref",
                _("%(organisation)s imported this source_ref meanwhile (case %(reference)s).")
                % {"organisation": plan.organisation.slug, "reference": found[case.source_ref_hash].reference},
            )
    survivor_ids = {event.duplicate_of_id for event in plan.events if event.duplicate_of_id is not None}
    if survivor_ids:
        statuses = dict(
            Case.objects.filter(pk__in=survivor_ids, organisation=plan.organisation).values_list("pk", "status")
        )
        for event in plan.events:
            if event.duplicate_of_id is not None and statuses.get(event.duplicate_of_id) in {None, Status.DUPLICATE}:
                event_problems.add(
                    event.line,
                    "duplicate_of",
                    _("The surviving case changed meanwhile: it is now a duplicate itself, or gone."),
                )
    if case_problems or event_problems:
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())


# The fields an import sets; every other field takes its default (see _Layout).
_CASE_FIELDS = (
    "id",
    "reference",
    "organisation_id",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "displaced_precision",
    "source",
    "placement",
    "institution_id",
    "status",
    "version",
    "source_ref_hash",
    "last_change_at",
)
_CHANGE_FIELDS = (
    "case_id",
    "from_status",
    "to_status",
    "occurred_on",
    "recorded_at",
    "recorded_via",
    "via_id",
    "duplicate_of_id",
    "note",
    "is_correction",
    "version",
)


def _case_rows(
    plan: ImportPlan, ids: Sequence[int | None], references: Sequence[str], now: dt.datetime
) -> Iterator[tuple[object, ...]]:
    organisation_id = plan.organisation.pk
    changed = {event.case_index for event in plan.events}
    for index, case in enumerate(plan.cases):
        yield (
            ids[index],
            references[index],
            organisation_id,
            case.sex,
            case.birth_year,
            case.oblast,
            case.reported_on,
            case.displaced_on,
            case.displaced_precision,
            case.source,
            case.placement,
            case.institution_id,
            case.status,
            case.version,
            case.source_ref_hash,
            now if index in changed else None,
        )


def _change_rows(plan: ImportPlan, case_ids: Sequence[int], now: dt.datetime) -> Iterator[tuple[object, ...]]:
    for event in plan.events:
        yield (
            case_ids[event.case_index],
            event.from_status,
            event.to_status,
            event.occurred_on,
            now,
            RECORDED_VIA,
            event.via_id,
            case_ids[event.duplicate_of_index] if event.duplicate_of_index is not None else event.duplicate_of_id,
            event.note,
            event.is_correction,
            event.version,
        )


@dataclass(frozen=True)
class _Layout:
    """Every concrete column of a model: the imported ones as given, the others at their default (or now)."""

    table: str
    columns: list[str]
    constants: tuple[object, ...]

    @classmethod
    def of(cls, model: type[Case] | type[StatusChange], imported: Sequence[str], now: dt.datetime) -> _Layout:
        by_attname = {f.attname: f for f in model._meta.concrete_fields}
        unknown = set(imported) - set(by_attname)
        assert not unknown, f"not fields of {model.__name__}: {sorted(unknown)}"
        # The primary key, when not given, is left to the database.
        others = [f for name, f in by_attname.items() if name not in imported and not f.primary_key]
        constants = tuple(
            now
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
            else f.get_db_prep_save(f.get_default(), connection)
            for f in others
        )
        columns = [_column(by_attname[name]) for name in imported] + [_column(f) for f in others]
        return cls(table=model._meta.db_table, columns=columns, constants=constants)


def _column(model_field: Field[Any, Any]) -> str:
    assert model_field.column is not None
    return model_field.column


def _copy(layout: _Layout, rows: Iterable[tuple[object, ...]], bar: tqdm[Never]) -> None:
    """PostgreSQL's COPY: several times faster than INSERT for thousands of rows, and no model instances."""
    quote = connection.ops.quote_name
    sql = f"COPY {quote(layout.table)} ({', '.join(quote(c) for c in layout.columns)}) FROM STDIN"
    constants = layout.constants
    # The driver's own cursor, which has copy(); wrap_database_errors still turns its errors into Django's.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for done, row in enumerate(rows, start=1):
            copy.write_row(row + constants)
            if done % _PROGRESS_STEP == 0:
                bar.update(_PROGRESS_STEP)


def _write_postgresql(plan: ImportPlan, references: Sequence[str], now: dt.datetime, bar: tqdm[Never]) -> None:
    # COPY cannot return the new ids, and the history rows need them: take them from the sequence first.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [Case._meta.db_table, _column(Case._meta.get_field("id")), len(plan.cases)],
        )
        case_ids: list[int] = [row[0] for row in cursor.fetchall()]
    _copy(_Layout.of(Case, _CASE_FIELDS, now), _case_rows(plan, case_ids, references, now), bar)
    _copy(_Layout.of(StatusChange, _CHANGE_FIELDS, now), _change_rows(plan, case_ids, now), bar)


def _write_bulk_create(
    plan: ImportPlan, references: Sequence[str], now: dt.datetime, bar: tqdm[Never], *, batch_size: int
) -> None:
    case_ids: list[int] = []
    rows = list(_case_rows(plan, [None] * len(plan.cases), references, now))
    for start in range(0, len(rows), batch_size):
        batch = [Case(**dict(zip(_CASE_FIELDS, row, strict=True))) for row in rows[start : start + batch_size]]
        created = Case.objects.bulk_create(batch)
        case_ids.extend(case.pk for case in created)
        bar.update(len(batch))
    if any(pk is None for pk in case_ids):  # a database that cannot return the ids of inserted rows
        ids: dict[str, int] = {}
        for queryset in _filter_in(Case.objects.all(), "reference", references):
            ids.update(queryset.values_list("reference", "id"))
        case_ids = [ids[reference] for reference in references]
    changes = list(_change_rows(plan, case_ids, now))
    for start in range(0, len(changes), batch_size):
        batch_changes = [
            StatusChange(**dict(zip(_CHANGE_FIELDS, row, strict=True))) for row in changes[start : start + batch_size]
        ]
        StatusChange.objects.bulk_create(batch_changes)
        bar.update(len(batch_changes))


def apply_import(
    plan: ImportPlan,
    *,
    progress: SupportsWrite[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportResult:
    """Write a checked plan in one transaction: all of it, or nothing.

    Cases are written first, then their history rows in file order; each case gets its final status,
    its version (1 + its number of status changes) and, if it has any, the time of the import as its
    last status change. Raises ``ImportErrors`` if another write overtook the plan since it was made.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            # One import at a time per organisation, so that two cannot both add the same source_ref.
            list(Organisation.objects.select_for_update().filter(pk=plan.organisation.pk).values_list("pk"))
            _recheck(plan)
            references = new_references(len(plan.cases), taken=_taken_references)
            with _progress_bar(progress, total=len(plan.cases) + len(plan.events), desc=_("Writing")) as bar:
                if connection.vendor == "postgresql":
                    _write_postgresql(plan, references, now, bar)
                else:
                    _write_bulk_create(plan, references, now, bar, batch_size=batch_size)
    except IntegrityError as exc:
        # Another write got in between the checks and the inserts (a case reference taken at that very
        # moment, an intermediary deleted): the transaction is rolled back as a whole.
        message = _("Another change clashed with this import (%(error)s). Nothing was written: run it again.")
        raise ImportErrors([ImportProblem(plan.cases_file, None, None, message % {"error": exc})]) from exc
    return ImportResult(cases=len(plan.cases), events=len(plan.events))
