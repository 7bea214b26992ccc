"""Writing a checked plan in one transaction: all of it, or nothing.

The files are read again, a row at a time, and written as they are read (COPY on PostgreSQL,
``bulk_create`` in batches elsewhere): memory does not grow with the number of rows. A file that
changed since it was checked is refused, and the transaction rolled back.
"""

from __future__ import annotations

import csv
import datetime as dt
import secrets
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Never

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation
from casework import audit_chain, bulk, identifying
from casework.importing.common import (
    CASE_COLUMNS,
    CASE_REQUIRED,
    DEFAULT_BATCH_SIZE,
    EVENT_COLUMNS,
    EVENT_REQUIRED,
    RECORDED_VIA,
    SOURCE_REF_KIND,
    ImportErrors,
    ImportPlan,
    ImportProblem,
    ImportResult,
    PlannedCase,
    ProgressHook,
)
from casework.importing.compact import CODE_OF, STATUS_CODES
from casework.importing.planning import parse_details
from casework.importing.reading import Problems, TableReader, filter_in, parse_day, parse_displaced, progress_bar
from casework.models import Case, DisplacedPrecision, Status, StatusChange
from casework.references import ALPHABET
from casework.screening import linkage_digester

if TYPE_CHECKING:
    from _typeshed import SupportsWrite
    from tqdm import tqdm


# The fields an import sets; every other field takes its default (casework.bulk.Layout).
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


def _changed(name: str) -> ImportErrors:
    message = _("The file changed after it was checked. Nothing was written: check it again.")
    return ImportErrors([ImportProblem(name, None, None, message)])


def _read(plan: ImportPlan, *, events: bool) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a checked file, read again; refused if the file is not the one checked."""
    name = (plan.events_file or "events.csv") if events else plan.cases_file
    source = plan.events_source if events else plan.cases_source
    if source is None:
        return
    columns, required = (EVENT_COLUMNS, EVENT_REQUIRED) if events else (CASE_COLUMNS, CASE_REQUIRED)
    problems = Problems(name, columns)
    with TableReader(source, problems=problems, columns=columns, required=required) as reader:
        if not reader.open():
            raise _changed(name)
        yield from reader
    if problems or reader.fingerprint != plan.fingerprints[1 if events else 0]:
        raise _changed(name)


def planned_cases(plan: ImportPlan, *, with_details: bool = True) -> Iterator[PlannedCase]:
    """The checked case rows, read again, with their final status and version (from the check)."""
    states = plan.states
    digest = linkage_digester(kind=SOURCE_REF_KIND)
    for ordinal, (line, row) in enumerate(_read(plan, events=False)):
        reported_on = parse_day(row["reported_on"])
        displaced_on, precision = parse_displaced(row["displaced_on"]) if row["displaced_on"] else (None, "")
        details = parse_details(row, today=plan.today, errors={}) if with_details else None
        yield PlannedCase(
            line=line,
            source_ref_hash=digest(row["source_ref"]),
            sex=row["sex"],
            birth_year=int(row["birth_year"]) if row["birth_year"] else None,
            oblast=row["oblast"],
            reported_on=reported_on,
            displaced_on=displaced_on,
            displaced_precision=precision,
            placement=row["placement"],
            institution_id=plan.institutions[row["institution"]] if row["institution"] else None,
            source=row["source"],
            source_ref=row["source_ref"],
            details=details,
            status=STATUS_CODES[states.status[ordinal]],
            version=states.version[ordinal],
        )


def _recheck(plan: ImportPlan) -> None:
    """Refuse a plan that was overtaken: a source_ref imported meanwhile, a surviving case now a duplicate.

    Cases imported since the check (with a margin for clocks and for imports that were waiting on the
    lock) are read as a stream and looked up in the plan's table of digests: no query per row.
    """
    case_problems = Problems(plan.cases_file, CASE_COLUMNS)
    event_problems = Problems(plan.events_file or "events.csv", EVENT_COLUMNS)
    recent = Case.objects.filter(
        organisation=plan.organisation,
        source_ref_hash__isnull=False,
        created_at__gte=plan.planned_at - RECHECK_MARGIN,
    ).values_list("source_ref_hash", "reference")
    for digest, reference in recent.iterator(chunk_size=5000):
        ordinal = plan.states.find(digest) if digest else None
        if ordinal is not None:
            case_problems.add(
                plan.states.line[ordinal],
                "source_ref",
                _("%(organisation)s imported this source_ref meanwhile (case %(reference)s).")
                % {"organisation": plan.organisation.slug, "reference": reference},
            )
    survivor_ids = {survivor_id for _line, survivor_id in plan.survivor_lines}
    if survivor_ids:
        statuses = dict(
            Case.objects.filter(pk__in=survivor_ids, organisation=plan.organisation).values_list("pk", "status")
        )
        for line, survivor_id in plan.survivor_lines:
            if statuses.get(survivor_id) in {None, Status.DUPLICATE}:
                event_problems.add(
                    line,
                    "duplicate_of",
                    _("The surviving case changed meanwhile: it is now a duplicate itself, or gone."),
                )
    if case_problems or event_problems:
        raise ImportErrors(case_problems.sorted() + event_problems.sorted())


# Cases created this long before the check are looked at again under the lock.
RECHECK_MARGIN = dt.timedelta(hours=1)


def _reference_text(number: int) -> str:
    body = "".join(ALPHABET[(number >> shift) & 31] for shift in range(35, -1, -5))
    return f"C-{body[:4]}-{body[4:]}"


def _draw_references(count: int) -> array[int]:
    """``count`` distinct random references (as their 40-bit numbers), none taken in the database.

    An open-addressing table of the numbers drawn keeps them distinct in 8 bytes each (a set of strings
    would take about 100); those already taken are looked up in a few queries and drawn again.
    """
    size = 1 << max(10, (2 * count - 1).bit_length())  # at most half full
    table = array("Q", bytes(8 * size))
    mask = size - 1
    drawn = array("Q")

    def draw() -> int:
        while True:
            number = secrets.randbits(40) or 1
            slot = number & mask
            while table[slot] and table[slot] != number:
                slot = (slot + 1) & mask
            if not table[slot]:
                table[slot] = number
                return number

    for _draw in range(count):
        drawn.append(draw())
    step = 5_000
    start = 0
    while start < count:
        texts = [_reference_text(number) for number in drawn[start : start + step]]
        taken: set[str] = set()
        for queryset in filter_in(Case.objects.all(), "reference", texts):
            taken.update(queryset.values_list("reference", flat=True))
        if taken:
            for position, text in enumerate(texts):
                if text in taken:
                    drawn[start + position] = draw()
            continue  # the chunk again, with the new draws
        start += step
    return drawn


def _case_rows(
    cases: Iterator[PlannedCase],
    organisation_id: int,
    ids: Sequence[int] | None,
    references: array[int],
    now: dt.datetime,
    on_reference: Callable[[str, str], object],
) -> Iterator[tuple[object, ...]]:
    for ordinal, case in enumerate(cases):
        reference = _reference_text(references[ordinal])
        on_reference(case.source_ref, reference)
        yield (
            ids[ordinal] if ids is not None else None,
            reference,
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
            now if case.version > 1 else None,
        )


def _change_rows(plan: ImportPlan, case_ids: Sequence[int], now: dt.datetime) -> Iterator[tuple[object, ...]]:
    """The status changes, read again; their cases and survivors as the check found them (no digest here)."""
    status = bytearray([CODE_OF[Status.REPORTED.value]]) * len(plan.states)
    version = array("I", [1]) * len(plan.states)
    event_cases, event_survivors, corrections = plan.event_cases, plan.event_survivors, plan.corrections
    organisations = plan.organisations
    dates: dict[str, dt.date] = {}  # the files repeat their dates
    for position, (_line, row) in enumerate(_read(plan, events=True)):
        ordinal = event_cases[position]
        survivor = event_survivors[position]
        duplicate_of = None if not survivor else (case_ids[survivor - 1] if survivor > 0 else -survivor)
        to_status = row["status"]
        occurred = row["occurred_on"]
        occurred_on = dates.get(occurred)
        if occurred_on is None:
            if len(dates) > 10_000:
                dates.clear()
            occurred_on = dates[occurred] = parse_day(occurred)
        from_status = STATUS_CODES[status[ordinal]]
        status[ordinal] = CODE_OF[to_status]
        version[ordinal] += 1
        yield (
            case_ids[ordinal],
            from_status,
            to_status,
            occurred_on,
            now,
            RECORDED_VIA,
            organisations[row["via"]] if row["via"] else None,
            duplicate_of,
            row["note"],
            bool(corrections[position]),
            version[ordinal],
        )


def _details(plan: ImportPlan, case_ids: Sequence[int]) -> Iterator[tuple[int, identifying.IdentifyingDetails]]:
    """(case id, details) of the cases that have some, read from the file again (never kept)."""
    for ordinal, case in enumerate(planned_cases(plan)):
        if case.details:
            yield case_ids[ordinal], case.details


# Lines of COPY text sent to the server at once.
_COPY_BLOCK = 1000


def _copy_cases(
    plan: ImportPlan,
    cursor: Any,
    case_ids: Sequence[int],
    references: array[int],
    now: dt.datetime,
    bar: tqdm[Never],
    on_reference: Callable[[str, str], object],
) -> None:
    """The cases as lines of COPY text, made from the checked values as they are in the file (codes and ISO
    dates need no conversion): no model instance, no parsed date, no driver call per row."""
    layout = bulk.Layout.of(Case, _CASE_FIELDS, now)
    tail = layout.text_tail() + "\n"
    states = plan.states
    digest = linkage_digester(kind=SOURCE_REF_KIND)
    head = f"\t{plan.organisation.pk}\t"
    changed_at, null = bulk.copy_text(now), bulk.NULL
    institutions = {code: str(pk) for code, pk in plan.institutions.items()}
    month, day = DisplacedPrecision.MONTH.value, DisplacedPrecision.DAY.value
    lines: list[str] = []
    with cursor.copy(layout.copy_statement()) as copy:
        for ordinal, (_line, row) in enumerate(_read(plan, events=False)):
            reference = _reference_text(references[ordinal])
            on_reference(row["source_ref"], reference)
            displaced = row["displaced_on"]
            if not displaced:
                displaced_on, precision = null, ""
            elif len(displaced) == 7:  # YYYY-MM, kept as the 1st of the month
                displaced_on, precision = displaced + "-01", month
            else:
                displaced_on, precision = displaced, day
            version = states.version[ordinal]
            lines.append(
                f"{case_ids[ordinal]}\t{reference}{head}{row['sex']}\t{row['birth_year'] or null}\t{row['oblast']}\t"
                f"{row['reported_on']}\t{displaced_on}\t{precision}\t{row['source']}\t{row['placement']}\t"
                f"{institutions[row['institution']] if row['institution'] else null}\t"
                f"{STATUS_CODES[states.status[ordinal]]}\t{version}\t{digest(row['source_ref'])}\t"
                f"{changed_at if version > 1 else null}{tail}"
            )
            if len(lines) >= _COPY_BLOCK:
                copy.write("".join(lines))
                bar.update(len(lines))
                lines.clear()
        copy.write("".join(lines))
        bar.update(len(lines))


class _ChangeLines:
    """Status changes as lines of COPY text, each sealed into the history's chain in file order.

    Reads the check's arrays (``event_cases``, ``event_survivors``, ``corrections``) by position: filled by a
    plan beforehand.
    """

    def __init__(
        self,
        *,
        cases: int,
        case_ids: Sequence[int],
        event_cases: array[int],
        event_survivors: array[int],
        corrections: bytearray,
        now: dt.datetime,
        chain: Any,
    ) -> None:
        self.layout = bulk.Layout.of(StatusChange, audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS), now)
        self._tail = self.layout.text_tail() + "\n"
        self._seal = chain.history_sealer(recorded_at=now, recorded_via=RECORDED_VIA)
        self._status = bytearray([CODE_OF[Status.REPORTED.value]]) * cases
        self._version = array("I", [1]) * cases
        self._case_ids = case_ids
        self._event_cases, self._event_survivors, self._corrections = event_cases, event_survivors, corrections
        self._middle = f"\t{bulk.copy_text(now)}\t{RECORDED_VIA}\t"
        self._digests: dict[str, str] = {}  # notes repeat

    def line(self, position: int, row: dict[str, str], organisations: dict[str, int]) -> str:
        status, version, case_ids, null = self._status, self._version, self._case_ids, bulk.NULL
        ordinal = self._event_cases[position]
        survivor = self._event_survivors[position]
        duplicate_of = None if not survivor else (case_ids[survivor - 1] if survivor > 0 else -survivor)
        via = organisations[row["via"]] if row["via"] else None
        to_status = row["status"]
        from_status = STATUS_CODES[status[ordinal]]
        status[ordinal] = CODE_OF[to_status]
        version[ordinal] = changed = version[ordinal] + 1
        note = row["note"]
        note_digest = self._digests.get(note)
        if note_digest is None:
            if len(self._digests) > 10_000:
                self._digests.clear()
            note_digest = self._digests[note] = audit_chain.note_digest(note)
        is_correction = bool(self._corrections[position])
        case_id = case_ids[ordinal]
        chain_hash = self._seal(
            case_id, from_status, to_status, row["occurred_on"], via, duplicate_of, note_digest, is_correction, changed
        )
        return (
            f"{case_id}\t{from_status}\t{to_status}\t{row['occurred_on']}{self._middle}"
            f"{null if via is None else via}\t{null if duplicate_of is None else duplicate_of}\t"
            f"{bulk.copy_text(note) if note else ''}\t{'t' if is_correction else 'f'}\t{changed}\t"
            f"{note_digest}\t{chain_hash}{self._tail}"
        )


def _copy_changes(
    plan: ImportPlan, cursor: Any, case_ids: Sequence[int], now: dt.datetime, bar: tqdm[Never], chain: Any
) -> None:
    """The status changes of a plan, read again and sent as COPY text."""
    changes = _ChangeLines(
        cases=len(plan.states),
        case_ids=case_ids,
        event_cases=plan.event_cases,
        event_survivors=plan.event_survivors,
        corrections=plan.corrections,
        now=now,
        chain=chain,
    )
    organisations = plan.organisations
    lines: list[str] = []
    with cursor.copy(changes.layout.copy_statement()) as copy:
        for position, (_line, row) in enumerate(_read(plan, events=True)):
            lines.append(changes.line(position, row, organisations))
            if len(lines) >= _COPY_BLOCK:
                copy.write("".join(lines))
                bar.update(len(lines))
                lines.clear()
        copy.write("".join(lines))
        bar.update(len(lines))


def _write_cases_postgresql(
    plan: ImportPlan,
    references: array[int],
    now: dt.datetime,
    bar: tqdm[Never],
    on_reference: Callable[[str, str], object],
) -> Sequence[int]:
    # COPY cannot return the new ids, and the history rows need them: take them from the sequence first.
    case_ids = array("q", bulk.reserve_ids(Case, plan.case_count))
    # The driver's own cursor, which has copy(); wrap_database_errors still turns its errors into Django's.
    with connection.wrap_database_errors, connection.cursor() as django_cursor:
        _copy_cases(plan, django_cursor.cursor, case_ids, references, now, bar, on_reference)
    return case_ids


def _write_changes_postgresql(plan: ImportPlan, case_ids: Sequence[int], now: dt.datetime, bar: tqdm[Never]) -> None:
    with (
        connection.wrap_database_errors,
        connection.cursor() as django_cursor,
        audit_chain.appending(StatusChange) as chain,
    ):
        _copy_changes(plan, django_cursor.cursor, case_ids, now, bar, chain)


def _write_cases_bulk_create(
    plan: ImportPlan,
    references: array[int],
    now: dt.datetime,
    bar: tqdm[Never],
    on_reference: Callable[[str, str], object],
    *,
    batch_size: int,
) -> Sequence[int]:
    cases = planned_cases(plan, with_details=False)
    case_rows = _case_rows(cases, plan.organisation.pk, None, references, now, on_reference)
    ids = bulk.insert_rows(Case, _CASE_FIELDS, case_rows, batch_size=batch_size, progress=bar.update)
    if any(pk is None for pk in ids):  # a database that cannot return the ids of inserted rows
        texts = [_reference_text(number) for number in references]
        found: dict[str, int] = {}
        for queryset in filter_in(Case.objects.all(), "reference", texts):
            found.update(queryset.values_list("reference", "id"))
        ids = [found[text] for text in texts]
    return array("q", ids)


def _write_changes_bulk_create(
    plan: ImportPlan, case_ids: Sequence[int], now: dt.datetime, bar: tqdm[Never], *, batch_size: int
) -> None:
    with audit_chain.appending(StatusChange) as chain:
        bulk.insert_rows(
            StatusChange,
            audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS),
            chain.seal_rows(_CHANGE_FIELDS, _change_rows(plan, case_ids, now)),
            batch_size=batch_size,
            progress=bar.update,
        )


def apply_import(
    plan: ImportPlan,
    *,
    progress: SupportsWrite[str] | ProgressHook | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_write: Callable[[Sequence[int]], object] | None = None,
    references_out: SupportsWrite[str] | None = None,
) -> ImportResult:
    """Write a checked plan in one transaction: all of it, or nothing.

    Cases are written first, then their history rows in file order; each case gets its final status,
    its version (1 + its number of status changes) and, if it has any, the time of the import as its
    last status change. The cases' identifying details go to the receivers of ``casework.identifying``
    in the same transaction, and so does ``after_write`` (given the new cases' ids, in file order: a door's
    bulk follow-ups, say). Raises ``ImportErrors`` if another write overtook the plan since it was made,
    or a file changed. ``references_out``: where ``source_ref,reference`` rows go as the cases are written
    (a CSV with a header; the door deletes it if this raises); without it they are returned in the
    result, which then grows with the file.
    """
    now = timezone.now()
    collected: list[tuple[str, str]] = []
    if references_out is not None:
        writer = csv.writer(references_out)
        writer.writerow(["source_ref", "reference"])

        def on_reference(source_ref: str, reference: str) -> None:
            writer.writerow((source_ref, reference))
    else:

        def on_reference(source_ref: str, reference: str) -> None:
            collected.append((source_ref, reference))

    try:
        with transaction.atomic(), ExitStack():
            # One import at a time per organisation, so that two cannot both add the same source_ref.
            # FOR NO KEY UPDATE: another import waits; rows that refer to the organisation (its caseworkers' new
            # cases, lists, shares) check their foreign key without waiting for the import to commit.
            list(Organisation.objects.select_for_update(no_key=True).filter(pk=plan.organisation.pk).values_list("pk"))
            _recheck(plan)
            references = _draw_references(plan.case_count)
            postgresql = connection.vendor == "postgresql"
            with progress_bar(progress, total=plan.case_count + plan.event_count, desc=_("Writing")) as bar:
                if postgresql:
                    case_ids = _write_cases_postgresql(plan, references, now, bar, on_reference)
                else:
                    case_ids = _write_cases_bulk_create(plan, references, now, bar, on_reference, batch_size=batch_size)
                if plan.detail_count:
                    # Identifying details go to their receivers (encoded, then dropped) in this transaction,
                    # before the history's rows: their encoding (seconds for thousands of cases) runs before
                    # the history's head is locked, not while every status change in the register waits.
                    identifying.deliver_import(organisation_id=plan.organisation.pk, details=_details(plan, case_ids))
                if plan.events_source is not None:
                    # What was written so far checked before the history's head is locked, not while it is held.
                    audit_chain.check_deferred_constraints()
                    if postgresql:
                        _write_changes_postgresql(plan, case_ids, now, bar)
                    else:
                        _write_changes_bulk_create(plan, case_ids, now, bar, batch_size=batch_size)
            if after_write is not None:
                after_write(case_ids)
    except IntegrityError as exc:
        # Another write got in between the checks and the inserts (a case reference taken at that very
        # moment, an intermediary deleted): the transaction is rolled back as a whole.
        message = _("Another change clashed with this import (%(error)s). Nothing was written: run it again.")
        raise ImportErrors([ImportProblem(plan.cases_file, None, None, message % {"error": exc})]) from exc
    return ImportResult(cases=plan.case_count, events=plan.event_count, references=collected)
