"""Writing a checked plan in one transaction: all of it, or nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Never

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from accounts.models import Organisation
from casework import audit_chain, bulk, identifying
from casework.importing.common import (
    CASE_COLUMNS,
    DEFAULT_BATCH_SIZE,
    EVENT_COLUMNS,
    RECORDED_VIA,
    ImportErrors,
    ImportPlan,
    ImportProblem,
    ImportResult,
    ProgressHook,
)
from casework.importing.reading import Problems, earlier_imports, filter_in, progress_bar, taken_references
from casework.models import Case, Status, StatusChange
from casework.references import new_references

if TYPE_CHECKING:
    from _typeshed import SupportsWrite


# --- writing -------------------------------------------------------------------


def _recheck(plan: ImportPlan) -> None:
    """Refuse a plan that was overtaken: a source_ref imported meanwhile, a surviving case now a duplicate."""
    case_problems = Problems(plan.cases_file, CASE_COLUMNS)
    event_problems = Problems(plan.events_file or "events.csv", EVENT_COLUMNS)
    found = earlier_imports(plan.organisation, (case.source_ref_hash for case in plan.cases))
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


def _write_postgresql(plan: ImportPlan, references: Sequence[str], now: dt.datetime, bar: tqdm[Never]) -> Sequence[int]:
    # COPY cannot return the new ids, and the history rows need them: take them from the sequence first.
    case_ids = list(bulk.reserve_ids(Case, len(plan.cases)))
    bulk.copy_rows(
        bulk.Layout.of(Case, _CASE_FIELDS, now), _case_rows(plan, case_ids, references, now), progress=bar.update
    )
    with audit_chain.appending(StatusChange) as chain:
        bulk.copy_rows(
            bulk.Layout.of(StatusChange, audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS), now),
            chain.seal_rows(_CHANGE_FIELDS, _change_rows(plan, case_ids, now)),
            progress=bar.update,
        )
    return case_ids


def _write_bulk_create(
    plan: ImportPlan, references: Sequence[str], now: dt.datetime, bar: tqdm[Never], *, batch_size: int
) -> Sequence[int]:
    case_rows = _case_rows(plan, [None] * len(plan.cases), references, now)
    case_ids = bulk.insert_rows(Case, _CASE_FIELDS, case_rows, batch_size=batch_size, progress=bar.update)
    if any(pk is None for pk in case_ids):  # a database that cannot return the ids of inserted rows
        ids: dict[str, int] = {}
        for queryset in filter_in(Case.objects.all(), "reference", references):
            ids.update(queryset.values_list("reference", "id"))
        case_ids = [ids[reference] for reference in references]
    with audit_chain.appending(StatusChange) as chain:
        bulk.insert_rows(
            StatusChange,
            audit_chain.sealed_fields(StatusChange, _CHANGE_FIELDS),
            chain.seal_rows(_CHANGE_FIELDS, _change_rows(plan, case_ids, now)),
            batch_size=batch_size,
            progress=bar.update,
        )
    return case_ids


def apply_import(
    plan: ImportPlan,
    *,
    progress: SupportsWrite[str] | ProgressHook | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    after_write: Callable[[Sequence[int]], object] | None = None,
) -> ImportResult:
    """Write a checked plan in one transaction: all of it, or nothing.

    Cases are written first, then their history rows in file order; each case gets its final status,
    its version (1 + its number of status changes) and, if it has any, the time of the import as its
    last status change. The cases' identifying details go to the receivers of ``casework.identifying``
    in the same transaction, and so does ``after_write`` (given the new cases' ids, in file order: a door's
    bulk follow-ups, say). Raises ``ImportErrors`` if another write overtook the plan since it was made.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            # One import at a time per organisation, so that two cannot both add the same source_ref.
            list(Organisation.objects.select_for_update().filter(pk=plan.organisation.pk).values_list("pk"))
            _recheck(plan)
            references = new_references(len(plan.cases), taken=taken_references)
            with progress_bar(progress, total=len(plan.cases) + len(plan.events), desc=_("Writing")) as bar:
                if connection.vendor == "postgresql":
                    case_ids = _write_postgresql(plan, references, now, bar)
                else:
                    case_ids = _write_bulk_create(plan, references, now, bar, batch_size=batch_size)
            # Identifying details go to their receivers (encoded, then dropped) in this transaction.
            identifying.deliver_import(
                organisation_id=plan.organisation.pk,
                details=[(case_ids[i], case.details) for i, case in enumerate(plan.cases) if case.details],
            )
            if after_write is not None:
                after_write(case_ids)
    except IntegrityError as exc:
        # Another write got in between the checks and the inserts (a case reference taken at that very
        # moment, an intermediary deleted): the transaction is rolled back as a whole.
        message = _("Another change clashed with this import (%(error)s). Nothing was written: run it again.")
        raise ImportErrors([ImportProblem(plan.cases_file, None, None, message % {"error": exc})]) from exc
    return ImportResult(
        cases=len(plan.cases),
        events=len(plan.events),
        references=[(case.source_ref, reference) for case, reference in zip(plan.cases, references, strict=True)],
    )
