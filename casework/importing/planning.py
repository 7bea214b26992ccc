"""Planning an import: every row checked, every case's moves replayed through the status machine."""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, Never

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation
from casework.identifying import (
    DETAIL_FIELDS,
    EARLIEST_BIRTH_YEAR,
    MAX_LENGTH,
    IdentifyingDetails,
    NotADate,
    PartialDate,
    parse_birth_date,
)
from casework.importing.common import (
    CASE_COLUMNS,
    CASE_FIELD_COLUMNS,
    CASE_REQUIRED,
    EVENT_COLUMNS,
    EVENT_REQUIRED,
    MOVE_FIELD_COLUMNS,
    SOURCE_REF_KIND,
    STATUSES,
    YEAR_RE,
    ImportErrors,
    ImportPlan,
    ImportSource,
    ProgressHook,
)
from casework.importing.compact import CODE_OF, STATUS_CODES, CaseStates
from casework.importing.reading import (
    Earlier,
    Problems,
    TableReader,
    count_lines,
    display_name,
    earlier_imports,
    parse_day,
    parse_displaced,
    progress_bar,
    with_codes,
)
from casework.models import Institution, Status
from casework.screening import linkage_digester
from casework.services import Move, check_move, validate_case_values

if TYPE_CHECKING:
    from _typeshed import SupportsWrite
    from tqdm import tqdm


# --- planning ------------------------------------------------------------------

# Why a date of birth was refused (casework.identifying.NotADate.reason), never with the value.
BIRTH_DATE_PROBLEMS = {
    "shape": lambda: _("Give the date of birth as YYYY-MM-DD, or YYYY-MM when only the month is known."),
    "month": lambda: _("There is no such month: check the date of birth."),
    "day": lambda: _("There is no such day in that month: check the date of birth."),
    "future": lambda: _("The date of birth is in the future."),
    "early": lambda: (
        _("The date of birth is before %(year)s: a child of the register is younger.") % {"year": EARLIEST_BIRTH_YEAR}
    ),
}


# Rows checked together: their lookups (earlier imports, institutions, intermediaries) are made in one
# query per batch, and the batch is all that is held of the file at a time.
BATCH = 2000


def batches(
    rows: Iterable[tuple[int, dict[str, str]]], size: int = BATCH
) -> Iterator[list[tuple[int, dict[str, str]]]]:
    batch: list[tuple[int, dict[str, str]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_details(row: dict[str, str], *, today: dt.date, errors: dict[str, str]) -> IdentifyingDetails | None:
    """The row's identifying details; a problem is reported by column, never with the value."""
    names: dict[str, str] = {}
    for column in ("given_name", "family_name", "patronymic", "birth_place"):
        value = " ".join(row[column].split())
        if len(value) > MAX_LENGTH:
            errors[column] = _("At most %(count)s characters.") % {"count": MAX_LENGTH}
        elif value and not any(char.isalpha() for char in value):
            errors[column] = _("Letters only: this does not look like a name.")
        names[column] = value
    born: PartialDate | None = None
    if row["birth_date"]:
        try:
            born = parse_birth_date(row["birth_date"], today=today, iso_only=True)
        except NotADate as refusal:
            errors["birth_date"] = BIRTH_DATE_PROBLEMS[refusal.reason]()
    details = IdentifyingDetails(birth_date=born, **names)
    return details or None


def _day(ordinal: int) -> dt.date | None:
    return dt.date.fromordinal(ordinal) if ordinal else None


class _Planner:
    def __init__(self, *, organisation: Organisation, today: dt.date, cases: Problems, events: Problems) -> None:
        self.organisation = organisation
        self.today = today
        self.case_problems = cases
        self.event_problems = events
        self.states = CaseStates()
        self.case_count = 0
        self.event_count = 0
        self.detail_count = 0
        self.corrections = bytearray()
        # Per status change, in file order: its case (ordinal) and its surviving case (0: none; an ordinal + 1;
        # minus the id of a case imported earlier), so that writing needs no digest and no lookup.
        self.event_cases = array("I")
        self.event_survivors = array("q")
        self._hash = linkage_digester(kind=SOURCE_REF_KIND)
        # Whether the cases file has any column of identifying details (most files have none).
        self.with_details = True
        self.survivors: dict[str, int] = {}
        self.survivor_lines: list[tuple[int, int]] = []
        # The rows of the batch being checked: source_ref -> digest.
        self._digests: dict[str, str] = {}
        # Earlier imports found (a case's source_ref imported before: a problem; a surviving case).
        self._earlier: dict[str, Earlier] = {}
        self._not_earlier: set[str] = set()
        self.institutions: dict[str, int] = {}
        self._no_institution: set[str] = set()
        self._organisations: dict[str, Organisation] = {}
        self._no_organisation: set[str] = set()

    def digest(self, source_ref: str) -> str:
        # The rows of a batch (and the events) repeat source_refs: hash each value once per batch.
        digest = self._digests.get(source_ref)
        if digest is None:
            digest = self._digests[source_ref] = self._hash(source_ref)
        return digest

    def _look_up_earlier(self, hashes: set[str]) -> None:
        hashes -= self._not_earlier
        hashes -= self._earlier.keys()
        if hashes:
            found = earlier_imports(self.organisation, hashes)
            self._earlier.update(found)
            self._not_earlier |= hashes - found.keys()

    def look_up_cases(self, batch: list[tuple[int, dict[str, str]]]) -> None:
        """What a batch of case rows refers to, in a query or two."""
        self._digests.clear()
        hashes = {self.digest(row["source_ref"]) for _line, row in batch if row["source_ref"]}
        earlier = earlier_imports(self.organisation, hashes) if hashes else {}
        self._earlier.update(earlier)
        codes = {row["institution"] for _line, row in batch if row["institution"]}
        codes -= self.institutions.keys() | self._no_institution
        if codes:
            found = dict(Institution.objects.filter(code__in=codes).values_list("code", "id"))
            self.institutions.update(found)
            self._no_institution |= codes - found.keys()

    def look_up_events(self, batch: list[tuple[int, dict[str, str]]]) -> None:
        self._digests.clear()
        hashes = {
            digest
            for _line, row in batch
            if row["duplicate_of"] and self.states.find(digest := self.digest(row["duplicate_of"])) is None
        }
        self._look_up_earlier(hashes)
        slugs = {row["via"] for _line, row in batch if row["via"]}
        slugs -= self._organisations.keys() | self._no_organisation
        if slugs:
            found = {org.slug: org for org in Organisation.objects.filter(slug__in=slugs)}
            self._organisations.update(found)
            self._no_organisation |= slugs - found.keys()

    def _record(self, ordinal: int, is_correction: bool, *, survivor: int | None, earlier: Earlier | None) -> None:
        self.corrections.append(1 if is_correction else 0)
        self.event_cases.append(ordinal)
        if survivor is not None:
            self.event_survivors.append(survivor + 1)
        else:
            self.event_survivors.append(-earlier.id if earlier is not None else 0)

    def check_case(self, line: int, row: dict[str, str]) -> None:
        errors: dict[str, str] = {}  # a column's own problem; the service's rules are not asked about it again
        states = self.states
        self.case_count += 1

        ordinal: int | None = None
        if not row["source_ref"]:
            errors["source_ref"] = _("Give the case's reference in your organisation's own records.")
        else:
            digest = self.digest(row["source_ref"])
            first = states.find(digest)
            earlier = self._earlier.get(digest)
            if first is not None:
                errors["source_ref"] = _(
                    "The same source_ref as line %(line)s (letter case and spacing are ignored)."
                ) % {"line": states.line[first]}
            else:
                ordinal = states.add(digest, line=line)
                if earlier is not None:
                    errors["source_ref"] = _(
                        "%(organisation)s imported this source_ref before (case %(reference)s)."
                    ) % {"organisation": self.organisation.slug, "reference": earlier.reference}

        reported_on = birth_year = displaced_on = None
        precision = ""
        if row["reported_on"]:
            try:
                reported_on = parse_day(row["reported_on"])
            except ValueError as exc:
                errors["reported_on"] = str(exc)
        if row["birth_year"]:
            if YEAR_RE.fullmatch(row["birth_year"]):
                birth_year = int(row["birth_year"])
            else:
                errors["birth_year"] = _("Give the birth year as a number, e.g. 2012, or leave it empty.")
        if row["displaced_on"]:
            try:
                displaced_on, precision = parse_displaced(row["displaced_on"])
            except ValueError as exc:
                errors["displaced_on"] = str(exc)
        if row["institution"] and row["institution"] not in self.institutions:
            errors["institution"] = _("No institution has the code “%(code)s”.") % {"code": row["institution"]}

        if self.with_details and parse_details(row, today=self.today, errors=errors) is not None:
            self.detail_count += 1

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
            column = CASE_FIELD_COLUMNS.get(name, name)
            if column not in errors:
                for message in messages:
                    self.case_problems.add(line, column, with_codes(column, message))
        if ordinal is not None and reported_on is not None:
            states.reported_on[ordinal] = reported_on.toordinal()

    def check_event(self, line: int, row: dict[str, str], *, cases_file: str) -> None:
        errors: dict[str, str] = {}  # a column's own problem; the service's rules are not asked about it again
        states = self.states
        self.event_count += 1

        ordinal = None
        if not row["source_ref"]:
            errors["source_ref"] = _("Give the source_ref of the case this change is for.")
        else:
            ordinal = states.find(self.digest(row["source_ref"]))
            if ordinal is None:
                errors["source_ref"] = _("No case with this source_ref in %(file)s.") % {"file": cases_file}

        to_status = row["status"]
        occurred_on = None
        if row["occurred_on"]:
            try:
                occurred_on = parse_day(row["occurred_on"])
            except ValueError as exc:
                errors["occurred_on"] = str(exc)
        via = None
        if row["via"]:
            via = self._organisations.get(row["via"])
            if via is None:
                errors["via"] = _("No organisation has the slug “%(slug)s”.") % {"slug": row["via"]}
        survivor: int | None = None  # a case of this file, by ordinal
        earlier: Earlier | None = None
        if row["duplicate_of"] and to_status == Status.DUPLICATE:
            digest = self.digest(row["duplicate_of"])
            survivor = states.find(digest)
            if survivor is None:
                earlier = self._earlier.get(digest)
                if earlier is None:
                    errors["duplicate_of"] = _(
                        "No case with this source_ref in %(file)s or imported earlier by %(organisation)s."
                    ) % {"file": cases_file, "organisation": self.organisation.slug}
                else:
                    self.survivors[digest] = earlier.id
                    self.survivor_lines.append((line, earlier.id))

        if ordinal is None:
            # Without its case the change cannot be replayed; say what can be said of the row itself.
            if to_status not in STATUSES:
                errors["status"] = _("“%(status)s” is not a status.") % {"status": to_status}
            for column, message in errors.items():
                self.event_problems.add(line, column, message)
            self._record(0, False, survivor=None, earlier=None)
            return

        if survivor is not None:
            survivor_status: str | None = STATUS_CODES[states.status[survivor]]
        else:
            survivor_status = earlier.status if earlier is not None else None
        move = Move(
            current=STATUS_CODES[states.status[ordinal]],
            to=to_status,
            occurred_on=occurred_on,
            # A missing report date is its case row's problem; it must not give a second error here.
            reported_on=_day(states.reported_on[ordinal]) or dt.date.min,
            last_occurred_on=_day(states.last_on[ordinal]),
            via=via,
            note=row["note"],
            duplicate_of_given=bool(row["duplicate_of"]),
            duplicate_of_is_self=survivor == ordinal,
            duplicate_of_status=survivor_status,
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
            column = MOVE_FIELD_COLUMNS.get(name, name)
            if column not in errors:
                for message in messages:
                    self.event_problems.add(line, column, message)
        self._record(ordinal, is_correction, survivor=survivor, earlier=earlier)
        # Move on to the state the file meant even when the row is refused, so that the next row is
        # judged on its own merits: one mistake gives one error, not a cascade.
        if to_status in STATUSES:
            states.status[ordinal] = CODE_OF[to_status]
            states.version[ordinal] += 1
        if occurred_on is not None:
            day = occurred_on.toordinal()
            if day > states.last_on[ordinal]:
                states.last_on[ordinal] = day


def _check_file(
    reader: TableReader,
    check: Callable[[int, dict[str, str]], None],
    look_up: Callable[[list[tuple[int, dict[str, str]]]], None],
    bar: tqdm[Never],
) -> None:
    for batch in batches(reader):
        look_up(batch)
        for line, row in batch:
            check(line, row)
        bar.update(len(batch))


def plan_import(
    *,
    cases_file: ImportSource,
    events_file: ImportSource | None = None,
    organisation: Organisation,
    today: dt.date | None = None,
    progress: SupportsWrite[str] | ProgressHook | None = None,
) -> ImportPlan:
    """Read and check the files; raise ``ImportErrors`` listing every problem, or return what to write.

    The files are read a row at a time, in batches: memory holds a batch and a few numbers per case
    (``compact.CaseStates``), whatever the size of the files. An open file must stay open and seekable
    until ``apply_import``, which reads it again. ``progress``: a stream (usually
    ``sys.stderr``) for a progress bar, shown only if it is a terminal, or a ``ProgressHook``.
    """
    today = today or timezone.localdate()
    planned_at = timezone.now()
    cases_name = display_name(cases_file, "cases.csv")
    events_name = display_name(events_file, "events.csv") if events_file is not None else None
    case_problems = Problems(cases_name, CASE_COLUMNS)
    event_problems = Problems(events_name or "events.csv", EVENT_COLUMNS)
    planner = _Planner(organisation=organisation, today=today, cases=case_problems, events=event_problems)
    # Counted first: an open file's position is shared with its reader.
    total = count_lines(cases_file) + (count_lines(events_file) if events_file is not None else 0)

    with ExitStack() as stack:
        cases = stack.enter_context(
            TableReader(cases_file, problems=case_problems, columns=CASE_COLUMNS, required=CASE_REQUIRED)
        )
        events = None
        if events_file is not None:
            events = stack.enter_context(
                TableReader(events_file, problems=event_problems, columns=EVENT_COLUMNS, required=EVENT_REQUIRED)
            )
        cases_usable = cases.open()
        events_usable = events.open() if events is not None else True
        if not cases_usable:
            # A file that cannot be read, or whose columns are wrong, says nothing reliable about its rows.
            raise ImportErrors(case_problems.sorted() + event_problems.sorted())
        planner.with_details = bool(cases.columns_given & set(DETAIL_FIELDS))
        with progress_bar(progress, total=max(1, total), desc=_("Checking")) as bar:
            _check_file(cases, planner.check_case, planner.look_up_cases, bar)
            if not planner.case_count and not case_problems:
                case_problems.add(None, None, _("The file has a header but no cases."))
                raise ImportErrors(case_problems.sorted() + event_problems.sorted())
            if events is not None and events_usable:
                check_event = partial(planner.check_event, cases_file=cases_name)
                _check_file(events, check_event, planner.look_up_events, bar)
    if case_problems or event_problems:
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())
    return ImportPlan(
        organisation=organisation,
        cases_file=cases_name,
        events_file=events_name,
        cases_source=cases_file,
        events_source=events_file,
        case_count=planner.case_count,
        event_count=planner.event_count,
        detail_count=planner.detail_count,
        today=today,
        planned_at=planned_at,
        fingerprints=(cases.fingerprint, events.fingerprint if events is not None else ""),
        states=planner.states,
        corrections=planner.corrections,
        event_cases=planner.event_cases,
        event_survivors=planner.event_survivors,
        institutions=planner.institutions,
        organisations={slug: org.pk for slug, org in planner._organisations.items()},
        survivors=planner.survivors,
        survivor_lines=planner.survivor_lines,
    )
