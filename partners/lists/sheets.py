"""A list as a sheet to send (XLSX or CSV), and an answered sheet read back: every error first, then all or nothing.

The sheet holds the references and the anonymised facts of each case (the
sending organisation adds names from its own files, outside the register),
the latest answer so far, and three columns for the intermediary to fill:
``answer`` (one of the answer codes), ``answered_on`` (YYYY-MM-DD) and
``note``. Uploading it back records the filled rows as answers, through
``services.record_answer``, in one transaction: a problem anywhere (the file,
a line, or a move the status service refuses) is reported as
``file:line: column: reason`` and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font

from accounts.models import User
from accounts.permissions import can_record_answers
from casework.audit import deferred_access_log, log_access
from casework.importing.common import ImportProblem
from casework.importing.reading import parse_day
from casework.models import AccessLog, Case, Status, StatusChange
from casework.references import normalise_reference
from casework.screening import screen_text
from casework.services import Move, NotPermitted, check_move, deferred_history
from partners.lists import services
from partners.models import AnswerKind, CaseList, ListAnswer, ListItem, ListState

FACT_COLUMNS = (
    "reference",
    "sex",
    "birth_year",
    "age_band",
    "oblast",
    "displaced_on",
    "placement",
    "institution",
    "risk_flags",
    "latest_answer",
    "latest_answered_on",
)
ANSWER_COLUMNS = ("answer", "answered_on", "note")
COLUMNS = (*FACT_COLUMNS, *ANSWER_COLUMNS)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_NOTE = 2000


# --- export ------------------------------------------------------------------------------


def export_items(*, case_list: CaseList, user: User, request: Any = None) -> list[ListItem]:
    """The list's items for a sheet, every case logged as exported by ``user``."""
    items = list(
        ListItem.objects.filter(case_list=case_list).select_related("case__institution").order_by("case__reference")
    )
    log_access(
        action=AccessLog.Action.EXPORT,
        door=AccessLog.Door.EXPORT,
        organisation_id=user.organisation_id,
        case_ids=[item.case_id for item in items],
        user=user,
        request=request,
    )
    return items


def rows(items: Iterable[ListItem]) -> Iterator[list[Any]]:
    yield list(COLUMNS)
    for item in items:
        case = item.case
        yield [
            case.reference,
            case.sex,
            case.birth_year or "",
            case.age_band,
            case.oblast,
            case.displaced_on.isoformat() if case.displaced_on else "",
            case.placement,
            case.institution.code if case.institution else "",
            " ".join(case.risk_flags),
            item.latest_answer,
            item.latest_answered_on.isoformat() if item.latest_answered_on else "",
            "",
            "",
            "",
        ]


def to_csv(items: Iterable[ListItem]) -> str:
    output = io.StringIO()
    csv.writer(output).writerows(rows(items))
    return output.getvalue()


def to_xlsx(items: Iterable[ListItem], *, case_list: CaseList) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "list"
    for values in rows(items):
        sheet.append([None if value == "" else value for value in values])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "B2"
    about = workbook.create_sheet("about")
    about.append([_("List"), case_list.pk])
    about.append([_("Intermediary"), case_list.intermediary.name])
    about.append([_("Sent on"), case_list.sent_on.isoformat() if case_list.sent_on else ""])
    about.append([_("Fill in"), _("answer, answered_on (YYYY-MM-DD) and note (optional), one row per child.")])
    about.append([_("Answers"), ", ".join(AnswerKind.values)])
    about.append([_("Never"), _("a name, a phone number, an address or a document number in the note.")])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


# --- upload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetAnswer:
    line: int
    reference: str
    answer: str
    answered_on: dt.date
    note: str


class SheetErrors(Exception):
    """Every problem found in the sheet; nothing was written."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(name: str, data: bytes, problems: list[ImportProblem]) -> list[list[str]] | None:
    """The sheet's rows as text cells (the header first), or None when the file cannot be read."""

    def refuse(message: str) -> None:
        problems.append(ImportProblem(file=name, line=None, column=None, message=message))

    if len(data) > MAX_UPLOAD_BYTES:
        refuse(_("The file is larger than 5 MB."))
        return None
    if name.lower().endswith(".xlsx"):
        table: list[list[str]] = []
        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                for row in workbook.worksheets[0].iter_rows(values_only=True):
                    table.append([_cell(value) for value in row])
                    if len(table) > services.MAX_LIST_ITEMS + 1:
                        break
            finally:
                workbook.close()
        except Exception:
            # Whatever a malformed workbook makes the parser raise, the answer is the same.
            refuse(_("The file is not an XLSX workbook."))
            return None
        return table
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        refuse(_("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."))
        return None
    try:
        return [[value.strip() for value in row] for row in csv.reader(io.StringIO(text, newline=""), strict=True)]
    except csv.Error as exc:
        refuse(_("Malformed CSV (%(error)s).") % {"error": exc})
        return None


def read_answers(*, name: str, data: bytes, case_list: CaseList) -> list[SheetAnswer]:
    """The filled rows of an answered sheet, checked; ``SheetErrors`` lists every problem otherwise."""
    problems: list[ImportProblem] = []

    def add(line: int | None, column: str | None, message: str) -> None:
        problems.append(ImportProblem(file=name, line=line, column=column, message=message))

    table = _table(name, data, problems)
    if table is None:
        raise SheetErrors(problems)
    if not table:
        add(None, None, _("The file is empty."))
        raise SheetErrors(problems)
    header = [value.strip().lower() for value in table[0]]
    for column in ("reference", *ANSWER_COLUMNS[:2]):
        if column not in header:
            add(1, column, _("Missing column."))
    if problems:
        raise SheetErrors(problems)
    position = {column: header.index(column) for column in ("reference", *ANSWER_COLUMNS) if column in header}
    on_list = set(ListItem.objects.filter(case_list=case_list).values_list("case__reference", flat=True))
    today = timezone.localdate()
    seen: dict[str, int] = {}
    found: list[SheetAnswer] = []
    for line, cells in enumerate(table[1:], start=2):

        def value(column: str, cells: list[str] = cells) -> str:
            index = position.get(column)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        answer, answered_on_text, note = value("answer"), value("answered_on"), value("note")
        if not answer and not answered_on_text and not note:
            continue  # not answered (yet): nothing to record
        reference = normalise_reference(value("reference"))
        if reference not in on_list:
            add(line, "reference", _("This case is not on list %(id)s.") % {"id": case_list.pk})
        elif reference in seen:
            add(
                line,
                "reference",
                _("Answered twice in this sheet (first on line %(line)s).") % {"line": seen[reference]},
            )
        else:
            seen[reference] = line
        if answer not in AnswerKind.values:
            add(line, "answer", _("Not an answer: use one of %(answers)s.") % {"answers": ", ".join(AnswerKind.values)})
        answered_on: dt.date | None = None
        try:
            answered_on = parse_day(answered_on_text)
        except ValueError as exc:
            add(line, "answered_on", str(exc))
        else:
            if answered_on > today:
                add(line, "answered_on", _("The date is in the future."))
            elif case_list.sent_on is not None and answered_on < case_list.sent_on:
                add(
                    line,
                    "answered_on",
                    _("The date is before the list was sent (%(date)s).") % {"date": case_list.sent_on},
                )
        if len(note) > MAX_NOTE:
            add(line, "note", _("At most %(count)s characters.") % {"count": MAX_NOTE})
        elif note:
            try:
                screen_text(note, field="note")
            except ValidationError as exc:
                for message in exc.message_dict["note"]:
                    add(line, "note", message)
        if answered_on is not None:
            found.append(SheetAnswer(line, reference, answer, answered_on, note))
    if not problems and not found:
        add(None, None, _("No row has an answer: fill in the answer and answered_on columns."))
    if problems:
        raise SheetErrors(problems)
    return found


@dataclass
class Preview:
    """What recording a checked sheet will do: the answers to record, by kind, and the cases they move."""

    answers: int = 0
    moves: int = 0
    known: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


Progress = Callable[[int], None]


def _recorded(case_list: CaseList) -> set[tuple[str, str, dt.date, str]]:
    # A sheet uploaded twice (or a preview confirmed twice) adds nothing the trail already has.
    return set(
        ListAnswer.objects.filter(item__case_list=case_list).values_list(
            "item__case__reference", "answer", "answered_on", "note"
        )
    )


def _refusal(name: str, line: int, refused: ValidationError) -> list[ImportProblem]:
    return [
        ImportProblem(file=name, line=line, column=field_name, message=message)
        for field_name, messages in refused.message_dict.items()
        for message in messages
    ]


def _in_order(problems: list[ImportProblem]) -> list[ImportProblem]:
    return sorted(problems, key=lambda problem: (problem.line or 0, problem.column or ""))


def check_answers(
    *,
    name: str,
    case_list: CaseList,
    answers: list[SheetAnswer],
    answerer: services.Answerer,
    progress: Progress | None = None,
) -> Preview:
    """The dry run: every check ``services.record_answer`` and the status service make, in memory and without
    a lock (the cases, the items and each case's latest change read in bulk); ``SheetErrors`` lists every
    problem. The recording (``apply_answers``) makes them all again, under the locks, through the services."""
    problems: list[ImportProblem] = []

    def add(line: int | None, column: str | None, message: str) -> None:
        problems.append(ImportProblem(file=name, line=line, column=column, message=message))

    user = answerer.user
    if user is None or not can_record_answers(user, case_list.organisation_id):
        add(None, None, _("Your role cannot record answers."))
        raise SheetErrors(problems)
    case_list = CaseList.objects.select_related("intermediary").get(pk=case_list.pk)
    if case_list.state != ListState.SENT:
        add(None, None, _("Answers are recorded on sent lists only, not on a draft or a closed list."))
        raise SheetErrors(problems)
    recorded = _recorded(case_list)
    references = [row.reference for row in answers]
    cases: dict[str, Case] = {}
    for chunk in range(0, len(references), 2000):
        cases.update(
            (case.reference, case)
            for case in Case.objects.filter(
                pk__in=ListItem.objects.filter(case_list=case_list).values("case_id"),
                reference__in=references[chunk : chunk + 2000],
            ).only("id", "reference", "organisation_id", "status", "reported_on")
        )
    last_change = dict(
        StatusChange.objects.filter(case_id__in=[case.pk for case in cases.values()])
        .values("case_id")
        .annotate(last=Max("occurred_on"))
        .values_list("case_id", "last")
    )
    actor = services.status_actor(answerer, case_list)
    today = timezone.localdate()
    preview = Preview()
    for done, row in enumerate(answers, start=1):
        if progress is not None:
            progress(done)
        if (row.reference, row.answer, row.answered_on, row.note) in recorded:
            preview.known += 1
            continue
        case = cases.get(row.reference)
        if case is None:
            add(row.line, None, _("This case is not on the list, or the list is no longer open."))
            continue
        if row.answer not in AnswerKind.values:
            add(row.line, "answer", _("“%(answer)s” is not an answer.") % {"answer": row.answer})
            continue
        if row.answered_on > today:
            add(row.line, "answered_on", _("The date is in the future."))
            continue
        if case_list.sent_on is not None and row.answered_on < case_list.sent_on:
            add(
                row.line,
                "answered_on",
                _("The date is before the list was sent (%(date)s).")
                % {"date": formats.date_format(case_list.sent_on)},
            )
            continue
        target = services.STATUS_OF_ANSWER.get(row.answer)
        if target is not None and services.moves_case(case.status, target):
            if not (actor.is_superuser or case.organisation_id == actor.organisation_id):
                add(row.line, None, _("This case is not on the list, or the list is no longer open."))
                continue
            move = Move(
                current=case.status,
                to=target,
                occurred_on=row.answered_on,
                reported_on=case.reported_on,
                last_occurred_on=last_change.get(case.pk),
                via=case_list.intermediary if target == Status.REPATRIATED else None,
                note=services.status_note(case_list, row.answer),
            )
            try:
                if not actor.can_edit:
                    raise NotPermitted(_("Your role cannot change a case's status."))
                check_move(move, can_correct=actor.can_correct, today=today)
            except NotPermitted as refused:
                add(row.line, None, str(refused))
                continue
            except ValidationError as refused:
                problems.extend(
                    _refusal(
                        name,
                        row.line,
                        ValidationError(
                            {
                                ("answered_on" if key == "occurred_on" else key): value
                                for key, value in refused.message_dict.items()
                            }
                        ),
                    )
                )
                continue
            preview.moves += 1
        preview.answers += 1
        preview.kinds[row.answer] = preview.kinds.get(row.answer, 0) + 1
    if problems:
        raise SheetErrors(_in_order(problems))
    return preview


class _DryRun(Exception):
    pass


def apply_answers(
    *,
    name: str,
    case_list: CaseList,
    answers: list[SheetAnswer],
    answerer: services.Answerer,
    request: Any = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[ListAnswer]:
    """Record every answer of the sheet in one transaction, or none (``SheetErrors``); an answer the trail already
    has (same child, answer, date and note) is not recorded again. ``dry_run``: check everything the services
    check, write nothing (``check_answers`` makes the same checks in memory, faster). ``progress`` is called
    with the number of rows done."""
    cases = {case.reference: case for case in Case.objects.filter(reference__in=[a.reference for a in answers])}
    recorded = _recorded(case_list)
    problems: list[ImportProblem] = []
    made: list[ListAnswer] = []
    try:
        with transaction.atomic():
            # Both chains' rows written at the end of the block, the history's then the access log's: their
            # heads, which every status change and every page view in the register lock to append, are held
            # from then to the commit only, not while thousands of answers are recorded.
            with deferred_access_log(), deferred_history():
                # The answers of children no answer of the sheet can move (received, not found, refused...) first,
                # then the others, each child's in date order. Children are recorded independently. The first
                # are written as they go; from the first move on, the answers wait with the moves they record
                # (insert_after_history) and are written at the block's end, under the history's head: the
                # fewer, the shorter it is held.
                moving = {row.reference for row in answers if row.answer in services.STATUS_OF_ANSWER}
                ordered = sorted(answers, key=lambda row: (row.reference in moving, row.answered_on, row.line))
                for done, row in enumerate(ordered, start=1):
                    if progress is not None:
                        progress(done)
                    if (row.reference, row.answer, row.answered_on, row.note) in recorded:
                        continue
                    # record_answer writes in a transaction of its own (a savepoint here): a refused answer
                    # leaves nothing behind, and the sheet goes on to find every other problem.
                    try:
                        made.append(
                            services.record_answer(
                                case_list=case_list,
                                case=cases[row.reference],
                                answer=row.answer,
                                answered_on=row.answered_on,
                                note=row.note,
                                answerer=answerer,
                                request=request,
                            )
                        )
                    except ValidationError as refused:
                        problems.extend(_refusal(name, row.line, refused))
                    except (services.ListNotFound, PermissionDenied) as refused:
                        problems.append(
                            ImportProblem(
                                file=name,
                                line=row.line,
                                column=None,
                                message=str(refused)
                                or _("This case is not on the list, or the list is no longer open."),
                            )
                        )
                if problems:
                    raise SheetErrors(_in_order(problems))
            if dry_run:
                raise _DryRun  # after the rows are written: the database checked them too
    except _DryRun:
        return made
    return made
