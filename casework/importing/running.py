"""Checking and writing in one go, for a door that wants the import rather than a preview.

``plan_import`` then ``apply_import`` read the files twice, and the check (Python's work) and the write
(the database's) follow each other. ``import_files`` does both in one transaction, under the
organisation's lock, with the work overlapping on PostgreSQL: the cases are checked first (nothing is
written yet: the changes need them), then each batch of status changes is checked and, as long as no
problem was found, sent with COPY as it is checked, and the cases follow with their final statuses.
A problem stops the writing; the checks go on to the end so that every problem is listed, and the
transaction is rolled back: nothing is written. It is all or nothing, as with a plan.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation
from casework import audit_chain, bulk, identifying
from casework.identifying import DETAIL_FIELDS
from casework.importing.common import (
    CASE_COLUMNS,
    CASE_REQUIRED,
    DEFAULT_BATCH_SIZE,
    EVENT_COLUMNS,
    EVENT_REQUIRED,
    ImportErrors,
    ImportPlan,
    ImportProblem,
    ImportResult,
    ImportSource,
    ProgressHook,
)
from casework.importing.planning import _check_file, _Planner, batches, plan_import
from casework.importing.reading import Problems, TableReader, count_lines, display_name, progress_bar
from casework.importing.writing import (
    _COPY_BLOCK,
    _ChangeLines,
    _copy_cases,
    _details,
    _draw_references,
    apply_import,
    reference_sink,
)
from casework.models import Case, StatusChange

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# Status changes checked, then sent, together (one COPY each): the lookups of a batch are queries, which
# cannot be made while a COPY is under way on the connection.
EVENT_BATCH = 5000


def import_files(
    *,
    cases_file: ImportSource,
    events_file: ImportSource | None = None,
    organisation: Organisation,
    today: dt.date | None = None,
    progress: SupportsWrite[str] | ProgressHook | None = None,
    after_write: Callable[[Sequence[int]], object] | None = None,
    references_out: SupportsWrite[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportResult:
    """Check the files and write them, all or nothing; raise ``ImportErrors`` listing every problem.

    The same checks as ``plan_import``, the same rows written as ``apply_import`` (``after_write`` and
    ``references_out`` as there); on databases other than PostgreSQL it is those two, one after the other.
    """
    if connection.vendor != "postgresql":
        plan = plan_import(
            cases_file=cases_file, events_file=events_file, organisation=organisation, today=today, progress=progress
        )
        return apply_import(
            plan, progress=progress, after_write=after_write, references_out=references_out, batch_size=batch_size
        )
    today = today or timezone.localdate()
    now = timezone.now()
    cases_name = display_name(cases_file, "cases.csv")
    events_name = display_name(events_file, "events.csv") if events_file is not None else None
    case_problems = Problems(cases_name, CASE_COLUMNS)
    event_problems = Problems(events_name or "events.csv", EVENT_COLUMNS)
    planner = _Planner(organisation=organisation, today=today, cases=case_problems, events=event_problems)
    on_reference, collected = reference_sink(references_out)
    # Counted first: an open file's position is shared with its reader.
    case_lines = count_lines(cases_file)
    total = 2 * case_lines + (count_lines(events_file) if events_file is not None else 0)
    try:
        with transaction.atomic(), ExitStack() as stack:
            # One import at a time per organisation: what is checked here is what is written.
            list(Organisation.objects.select_for_update().filter(pk=organisation.pk).values_list("pk"))
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
                raise ImportErrors(case_problems.sorted() + event_problems.sorted())
            planner.with_details = bool(cases.columns_given & set(DETAIL_FIELDS))
            bar = stack.enter_context(progress_bar(progress, total=max(1, total), desc=_("Importing")))
            _check_file(cases, planner.check_case, planner.look_up_cases, bar)
            if not planner.case_count and not case_problems:
                case_problems.add(None, None, _("The file has a header but no cases."))
            writing = not case_problems and events_usable
            case_ids: array[int] = array("q")
            if writing:
                case_ids = array("q", bulk.reserve_ids(Case, planner.case_count))
            cursor = stack.enter_context(connection.cursor()).cursor
            if events is not None and events_usable:
                changes = None
                if writing:
                    chain = stack.enter_context(audit_chain.appending(StatusChange))
                    changes = _ChangeLines(
                        cases=len(planner.states),
                        case_ids=case_ids,
                        event_cases=planner.event_cases,
                        event_survivors=planner.event_survivors,
                        corrections=planner.corrections,
                        now=now,
                        chain=chain,
                    )
                for batch in batches(events, size=EVENT_BATCH):
                    planner.look_up_events(batch)
                    if changes is None or not writing:
                        for line, row in batch:
                            planner.check_event(line, row, cases_file=cases_name)
                        bar.update(len(batch))
                        continue
                    organisations = {slug: org.pk for slug, org in planner._organisations.items()}
                    lines: list[str] = []
                    with connection.wrap_database_errors, cursor.copy(changes.layout.copy_statement()) as copy:
                        for line, row in batch:
                            position = planner.event_count
                            planner.check_event(line, row, cases_file=cases_name)
                            if not writing:
                                continue
                            if event_problems:
                                writing = False  # nothing more is sent; the rest is only checked
                                continue
                            lines.append(changes.line(position, row, organisations))
                            if len(lines) >= _COPY_BLOCK:
                                copy.write("".join(lines))
                                lines.clear()
                        if writing:
                            copy.write("".join(lines))
                    bar.update(len(batch))
            if case_problems or event_problems:
                raise ImportErrors(case_problems.sorted() + event_problems.sorted())
            plan = ImportPlan(
                organisation=organisation,
                cases_file=cases_name,
                events_file=events_name,
                cases_source=cases_file,
                events_source=events_file,
                case_count=planner.case_count,
                event_count=planner.event_count,
                detail_count=planner.detail_count,
                today=today,
                planned_at=now,
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
            references = _draw_references(plan.case_count)
            with connection.wrap_database_errors:
                _copy_cases(plan, cursor, case_ids, references, now, bar, on_reference)
            if plan.detail_count:
                # Identifying details go to their receivers (encoded, then dropped) in this transaction.
                identifying.deliver_import(organisation_id=organisation.pk, details=_details(plan, case_ids))
            if after_write is not None:
                after_write(case_ids)
    except IntegrityError as exc:
        # Another write got in between (a case reference taken at that very moment, an intermediary deleted):
        # the transaction is rolled back as a whole.
        message = _("Another change clashed with this import (%(error)s). Nothing was written: run it again.")
        raise ImportErrors([ImportProblem(cases_name, None, None, message % {"error": exc})]) from exc
    return ImportResult(
        cases=planner.case_count, events=planner.event_count, references=collected, details=planner.detail_count
    )
