"""Planning an import: every row checked, every case's moves replayed through the status machine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation
from casework.identifying import (
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
    PROGRESS_STEP,
    SOURCE_REF_KIND,
    STATUSES,
    YEAR_RE,
    ImportErrors,
    ImportPlan,
    ImportSource,
    PlannedCase,
    PlannedEvent,
    ProgressHook,
)
from casework.importing.reading import (
    Earlier,
    Problems,
    Table,
    display_name,
    earlier_imports,
    parse_day,
    parse_displaced,
    progress_bar,
    read_table,
    with_codes,
)
from casework.models import Institution, Status
from casework.screening import linkage_digest
from casework.services import Move, check_move, validate_case_values

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


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
    def __init__(self, *, organisation: Organisation, today: dt.date, cases: Problems, events: Problems) -> None:
        self.organisation = organisation
        self.today = today
        self.case_problems = cases
        self.event_problems = events
        self.states: dict[str, _CaseState] = {}
        self.cases: list[PlannedCase] = []
        self.events: list[PlannedEvent] = []
        self._digests: dict[str, str] = {}
        self._earlier: dict[str, Earlier] = {}
        self._institutions: dict[str, int] = {}
        self._organisations: dict[str, Organisation] = {}

    def digest(self, source_ref: str) -> str:
        # The events repeat the cases' source_refs: hash each value once.
        digest = self._digests.get(source_ref)
        if digest is None:
            digest = self._digests[source_ref] = linkage_digest(source_ref, kind=SOURCE_REF_KIND)
        return digest

    def look_up(self, cases: Table, events: Table | None) -> None:
        """Everything the rows refer to, in a few bulk queries."""
        hashes = {self.digest(row["source_ref"]) for _line, row in cases.rows if row["source_ref"]}
        codes = {row["institution"] for _line, row in cases.rows if row["institution"]}
        slugs: set[str] = set()
        if events is not None:
            hashes |= {self.digest(row["duplicate_of"]) for _line, row in events.rows if row["duplicate_of"]}
            slugs = {row["via"] for _line, row in events.rows if row["via"]}
        self._earlier = earlier_imports(self.organisation, hashes)
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
        institution_id = None
        if row["institution"]:
            institution_id = self._institutions.get(row["institution"])
            if institution_id is None:
                errors["institution"] = _("No institution has the code “%(code)s”.") % {"code": row["institution"]}

        details = self.details(row, errors)

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
            source_ref=row["source_ref"],
            details=details,
        )
        self.cases.append(state.planned)

    def details(self, row: dict[str, str], errors: dict[str, str]) -> IdentifyingDetails | None:
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
                born = parse_birth_date(row["birth_date"], today=self.today, iso_only=True)
            except NotADate as refusal:
                errors["birth_date"] = BIRTH_DATE_PROBLEMS[refusal.reason]()
        details = IdentifyingDetails(birth_date=born, **names)
        return details or None

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
                occurred_on = parse_day(row["occurred_on"])
            except ValueError as exc:
                errors["occurred_on"] = str(exc)
        via = None
        if row["via"]:
            via = self._organisations.get(row["via"])
            if via is None:
                errors["via"] = _("No organisation has the slug “%(slug)s”.") % {"slug": row["via"]}
        survivor: _CaseState | Earlier | None = None
        if row["duplicate_of"] and to_status == Status.DUPLICATE:
            digest = self.digest(row["duplicate_of"])
            survivor = self.states.get(digest) or self._earlier.get(digest)
            if survivor is None:
                errors["duplicate_of"] = _(
                    "No case with this source_ref in %(file)s or imported earlier by %(organisation)s."
                ) % {"file": cases_file, "organisation": self.organisation.slug}

        if state is None:
            # Without its case the change cannot be replayed; say what can be said of the row itself.
            if to_status not in STATUSES:
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
            column = MOVE_FIELD_COLUMNS.get(name, name)
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
                    duplicate_of_id=survivor.id if isinstance(survivor, Earlier) else None,
                    note=row["note"],
                    is_correction=is_correction,
                    version=state.version + 1,
                )
            )
        # Move on to the state the file meant even when the row is refused, so that the next row is
        # judged on its own merits: one mistake gives one error, not a cascade.
        if to_status in STATUSES:
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
    progress: SupportsWrite[str] | ProgressHook | None = None,
) -> ImportPlan:
    """Read and check the files; raise ``ImportErrors`` listing every problem, or return what to write.

    ``progress``: a stream (usually ``sys.stderr``) for a progress bar, shown only if it is a terminal.
    """
    today = today or timezone.localdate()
    cases_name = display_name(cases_file, "cases.csv")
    events_name = display_name(events_file, "events.csv") if events_file is not None else None
    case_problems = Problems(cases_name, CASE_COLUMNS)
    event_problems = Problems(events_name or "events.csv", EVENT_COLUMNS)

    cases = read_table(cases_file, problems=case_problems, columns=CASE_COLUMNS, required=CASE_REQUIRED)
    events = None
    if events_file is not None:
        events = read_table(events_file, problems=event_problems, columns=EVENT_COLUMNS, required=EVENT_REQUIRED)
    if cases is not None and not cases.rows:
        case_problems.add(None, None, _("The file has a header but no cases."))
    if cases is None or not cases.rows:
        # A file that cannot be read, or whose columns are wrong, says nothing reliable about its rows.
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())

    planner = _Planner(organisation=organisation, today=today, cases=case_problems, events=event_problems)
    planner.look_up(cases, events)
    event_rows = events.rows if events is not None else []
    with progress_bar(progress, total=len(cases.rows) + len(event_rows), desc=_("Checking")) as bar:
        for done, (line, row) in enumerate(cases.rows, start=1):
            planner.check_case(line, row)
            if done % PROGRESS_STEP == 0:
                bar.update(PROGRESS_STEP)
        bar.update(len(cases.rows) % PROGRESS_STEP)
        for done, (line, row) in enumerate(event_rows, start=1):
            planner.check_event(line, row, cases_file=cases_name)
            if done % PROGRESS_STEP == 0:
                bar.update(PROGRESS_STEP)
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
