"""The web import of case files: upload, columns matched, every problem shown, then all or nothing.

The steps of an ``ImportJob``:

1. ``start``: the uploaded files (CSV or XLSX, at most ``IMPORT_MAX_UPLOAD_BYTES`` each) are copied into
   the job's own directory under ``settings.IMPORT_PRIVATE_DIR`` (never served, readable by the server
   only) and their header rows read. State ``mapping``.
2. ``submit_mapping``: each header is matched to one of the importer's columns, or ignored; a Celery task
   (``casework.tasks.check_import``) writes the files again with the importer's columns
   (``casework.importing.sources``) and runs ``plan_import``: nothing is written to the register. State
   ``invalid`` with every problem (``file:line: column: reason``), or ``ready`` with the counts.
3. ``confirm``: the organisation's mapping is remembered, and ``casework.tasks.run_import`` plans again
   and writes with ``apply_import`` (which checks again under the organisation's lock), the rules'
   follow-ups made in the same transaction. State ``done`` (the references file kept for the importer
   for ``IMPORT_REFERENCES_HOURS``) or ``failed``.

The uploaded and converted files hold what the organisation typed, names included: they are deleted when
the import is done, failed or cancelled, and ``sweep`` (beat, hourly) deletes those of an import left for
``IMPORT_UPLOAD_HOURS`` and references files past their time. The problems name lines and columns, never
values; nothing identifying is logged. The import as a whole and each download of its references are in
the access log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.models import User
from casework import audit_chain, followups, uploads
from casework.audit import log_access
from casework.import_models import ImportJob, ImportMapping
from casework.importing import ImportErrors, ImportProblem, apply_import, plan_import
from casework.importing.common import CASE_REQUIRED, EVENT_REQUIRED
from casework.importing.sources import (
    SHEET_COLUMNS,
    XLSX,
    SourceProblem,
    convert,
    detect_format,
    header_key,
    open_named,
    read_headers,
    status_sheet,
    suggest,
)
from casework.models import AccessLog
from config import broker

logger = logging.getLogger(__name__)
CHECKING = ImportJob.State.CHECKING
RUNNING = ImportJob.State.RUNNING

SHEETS = ("cases", "events")
REQUIRED: dict[str, frozenset[str]] = {"cases": CASE_REQUIRED, "events": EVENT_REQUIRED}
# Progress is written at most this often (a write per row would cost more than the row).
PROGRESS_SECONDS = 0.5


class Refused(Exception):
    """An upload or a step refused; ``messages`` say why, for the page."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


class QueueUnavailable(Refused):
    """The job queue does not answer: the files cannot be checked or imported now (nothing was changed)."""

    def __init__(self) -> None:
        super().__init__(
            [
                _(
                    "The job queue is unavailable, so the files cannot be checked or imported now. "
                    "Nothing was changed: try again in a few minutes."
                )
            ]
        )


# --- the job's private files ---------------------------------------------------------------------


def job_dir(job: ImportJob) -> Path:
    return Path(settings.IMPORT_PRIVATE_DIR) / str(job.key)


def _upload_path(job: ImportJob, sheet: str) -> Path:
    return job_dir(job) / f"upload-{sheet}"


def _converted_path(job: ImportJob, sheet: str) -> Path:
    return job_dir(job) / f"{sheet}.csv"


def references_path(job: ImportJob) -> Path:
    return job_dir(job) / "references.csv"


def _save(upload: UploadedFile[bytes], path: Path) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def delete_files(job: ImportJob, *, keep_references: bool = False) -> None:
    """The uploaded and converted files (and the references unless kept): gone, whatever happened."""
    directory = job_dir(job)
    if not directory.exists():
        return
    if not keep_references:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for path in directory.iterdir():
        if path.name != references_path(job).name:
            path.unlink(missing_ok=True)


def _display_name(upload: UploadedFile[bytes]) -> str:
    name = Path(upload.name or "file").name.replace(":", "_").strip() or "file"
    return name[-100:]


# --- 1. upload ------------------------------------------------------------------------------------


def start(
    *, user: User, cases: UploadedFile[bytes] | None, events: UploadedFile[bytes] | None, request: Any = None
) -> ImportJob:
    """Keep the uploaded files privately and read their header rows; ``Refused`` with every reason."""
    if not permissions.can_import_cases(user):
        raise Refused([_("Your role cannot import cases.")])
    problems: list[str] = []
    if cases is None:
        problems.append(_("Choose the file of cases (CSV or XLSX)."))
    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    for upload in (cases, events):
        if upload is not None and upload.size is not None and upload.size > limit:
            problems.append(
                _("%(name)s is larger than %(size)s MB: split it into smaller files.")
                % {"name": _display_name(upload), "size": limit // (1024 * 1024)}
            )
    if problems:
        raise Refused(problems)
    assert cases is not None
    cases_name = _display_name(cases)
    events_name = _display_name(events) if events is not None else ""
    if events_name and events_name == cases_name:
        events_name = f"2-{events_name}"
    job = ImportJob(
        organisation_id=user.organisation_id, created_by=user, cases_name=cases_name, events_name=events_name
    )
    uploads.private_dir(Path(settings.IMPORT_PRIVATE_DIR))
    uploads.private_dir(job_dir(job))
    try:
        for sheet, upload, name in (("cases", cases, cases_name), ("events", events, events_name)):
            if upload is None:
                continue
            path = _upload_path(job, sheet)
            _save(upload, path)
            fmt = detect_format(name, path)
            if fmt is None:
                problems.append(
                    _("%(name)s: only CSV (.csv) and Excel workbooks (.xlsx) can be imported.") % {"name": name}
                )
                continue
            try:
                headers = read_headers(path, fmt, name)
            except SourceProblem as problem:
                problems.append(str(problem.problem))
                continue
            setattr(job, f"{sheet}_format", fmt)
            setattr(job, f"{sheet}_headers", headers)
            if sheet == "cases" and events is None and fmt == XLSX:
                _status_sheet(job, path)
        if problems:
            raise Refused(problems)
        job.save()
    except BaseException:
        delete_files(job)
        raise
    return job


def _status_sheet(job: ImportJob, path: Path) -> None:
    """A workbook of cases with a sheet of status changes (KoBoToolbox's repeat group, a second sheet kept in
    Excel): that sheet becomes the job's status changes, named ``cases.xlsx [Status changes]`` in messages."""
    try:
        title = status_sheet(path, job.cases_name, remembered(job.organisation_id)["events"])
        if title is None:
            return
        name = f"{job.cases_name[: 120 - len(title) - 3]} [{title}]"
        headers = read_headers(path, XLSX, name, title)
    except SourceProblem:
        return  # the sheet cannot be read: the cases are imported without it, as from a workbook without one
    events_path = _upload_path(job, "events")
    try:
        os.link(path, events_path)  # the same workbook, not a copy of it
    except OSError:
        shutil.copyfile(path, events_path)
    job.events_name, job.events_format, job.events_headers, job.events_sheet = name, XLSX, headers, title


# --- 2. the columns, and the check ------------------------------------------------------------------


def remembered(organisation_id: int) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {sheet: {} for sheet in SHEETS}
    for sheet, header, column in ImportMapping.objects.filter(organisation_id=organisation_id).values_list(
        "sheet", "header", "column"
    ):
        found.setdefault(sheet, {})[header] = column
    return found


def suggested_mapping(job: ImportJob) -> dict[str, dict[str, str]]:
    """The job's own mapping when it has one, else the organisation's remembered answers and known labels."""
    if job.mapping:
        return {sheet: dict(job.mapping.get(sheet, {})) for sheet in SHEETS}
    known = remembered(job.organisation_id)
    return {
        "cases": suggest("cases", job.cases_headers, known["cases"]),
        "events": suggest("events", job.events_headers, known["events"]) if job.events_name else {},
    }


def check_mapping(job: ImportJob, mapping: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """Every reason the mapping cannot be used, by sheet: a column chosen twice, a required one not chosen."""
    problems: dict[str, list[str]] = {}
    for sheet in SHEETS:
        headers = job.cases_headers if sheet == "cases" else job.events_headers
        if sheet == "events" and not job.events_name:
            continue
        chosen: dict[str, str] = {}
        found: list[str] = []
        for header in headers:
            column = mapping.get(sheet, {}).get(header, "")
            if column and column not in SHEET_COLUMNS[sheet]:
                found.append(_("“%(header)s”: choose a column from the list.") % {"header": header})
            elif column in chosen:
                found.append(
                    _("“%(first)s” and “%(second)s” are both matched to %(column)s: choose one.")
                    % {"first": chosen[column], "second": header, "column": column}
                )
            elif column:
                chosen[column] = header
        for column in SHEET_COLUMNS[sheet]:
            if column in REQUIRED[sheet] and column not in chosen:
                found.append(_("Match a column of the file to %(column)s: it is required.") % {"column": column})
        if found:
            problems[sheet] = found
    return problems


def submit_mapping(*, job: ImportJob, mapping: Mapping[str, Mapping[str, str]]) -> None:
    """Keep the mapping and have the files checked (a Celery task, after the commit)."""
    from casework import tasks

    problems = check_mapping(job, mapping)
    if problems:
        raise Refused([message for messages in problems.values() for message in messages])
    if not broker.queue_available():
        raise QueueUnavailable
    updated = ImportJob.objects.filter(
        pk=job.pk, state__in=[ImportJob.State.MAPPING, ImportJob.State.INVALID, ImportJob.State.READY]
    ).update(
        mapping={sheet: dict(mapping.get(sheet, {})) for sheet in SHEETS},
        state=ImportJob.State.CHECKING,
        done=0,
        total=0,
        problems="",
        problem_count=0,
        updated_at=timezone.now(),
    )
    if not updated:
        raise Refused([_("This import cannot be changed any more.")])
    _send(tasks.check_import, job, queued=CHECKING, back_to=ImportJob.State.MAPPING)


def _send(task: Any, job: ImportJob, *, queued: str, back_to: str) -> None:
    """Queue the job's task after the commit; if the broker refuses it, the job goes back to ``back_to`` (where
    it can be started again) and, when that happened at once (the page's own request), the page says why."""

    def put_back() -> None:
        ImportJob.objects.filter(pk=job.pk, state=queued).update(state=back_to, updated_at=timezone.now())

    if not broker.send_after_commit(task, job.pk, on_failure=put_back):
        raise QueueUnavailable


class JobProgress:
    """A ``ProgressHook`` writing to the job's row, read by the page's progress bar.

    ``phases``: how many bars the task runs (checking, then writing); the first bar's total is counted
    once per phase, so that one bar goes from 0 to 100 over the whole task. Inside the import's
    transaction the row is written through a connection of its own on PostgreSQL, so that the page sees
    the progress before the commit; SQLite (the demo, the tests) has a single writer and writes it in
    the transaction.
    """

    def __init__(self, job_id: int, *, phases: int = 1) -> None:
        self.job_id = job_id
        self.phases = phases
        self.done = 0
        self.total = 0
        self._written_at = 0.0
        self._side: Any = None

    def start(self, *, total: int, desc: str) -> None:
        if not self.total:
            self.total = max(1, total * self.phases)
            self._write(force=True)

    def update(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        self._write(force=self.done >= self.total)

    def _write(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written_at < PROGRESS_SECONDS:
            return
        self._written_at = now
        if connection.in_atomic_block and connection.vendor == "postgresql":
            if self._side is None:
                self._side = connections.create_connection("default")
            with self._side.cursor() as cursor:
                cursor.execute(
                    "UPDATE casework_importjob SET done = %s, total = %s WHERE id = %s",
                    [self.done, self.total, self.job_id],
                )
            return
        ImportJob.objects.filter(pk=self.job_id).update(done=self.done, total=self.total)

    def close(self) -> None:
        """The last figures written, and the side connection closed."""
        if self.total:
            self._write(force=True)
        if self._side is not None:
            self._side.close()
            self._side = None


def _header_columns(job: ImportJob) -> dict[tuple[str, str], str]:
    """(file name, column) -> the file's own header, for the messages."""
    names = {"cases": job.cases_name, "events": job.events_name}
    found: dict[tuple[str, str], str] = {}
    for sheet, mapping in job.mapping.items():
        for header, column in mapping.items():
            if column:
                found[(names[sheet], column)] = header
    return found


def _as_shown(job: ImportJob, problems: Sequence[ImportProblem]) -> list[str]:
    """The importer's problems as the user reads them: their own header beside the importer's column."""
    headers = _header_columns(job)
    shown = []
    for problem in problems:
        column = problem.column
        header = headers.get((problem.file, column)) if column else None
        if header and header_key(header) != column:
            column = f"{header} ({column})"
        shown.append(str(ImportProblem(problem.file, problem.line, column, problem.message)))
    return shown


def _convert(job: ImportJob) -> None:
    for sheet in SHEETS:
        name = job.cases_name if sheet == "cases" else job.events_name
        if not name:
            continue
        fmt = job.cases_format if sheet == "cases" else job.events_format
        descriptor = os.open(_converted_path(job, sheet), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8", newline="") as out:
            convert(
                path=_upload_path(job, sheet),
                fmt=fmt,
                name=name,
                mapping=job.mapping.get(sheet, {}),
                out=out,
                sheet=job.events_sheet if sheet == "events" else "",
            )


@contextmanager
def _files(job: ImportJob) -> Iterator[tuple[IO[bytes], IO[bytes] | None]]:
    """The converted files, open while the import checks them and, later, writes them."""
    with ExitStack() as stack:
        cases = stack.enter_context(open_named(_converted_path(job, "cases"), job.cases_name))
        events = None
        if job.events_name:
            events = stack.enter_context(open_named(_converted_path(job, "events"), job.events_name))
        yield cases, events


def _plan(job: ImportJob, progress: JobProgress) -> Any:
    with _files(job) as (cases, events):
        return plan_import(cases_file=cases, events_file=events, organisation=job.organisation, progress=progress)


def _fail(job: ImportJob, *, state: str, problems: Sequence[str], expected: str) -> bool:
    """The job refused or failed, if it is still in the ``expected`` state (a task delivered twice, or the
    sweep, may have moved it on: then nothing is changed). True when it was marked."""
    marked = ImportJob.objects.filter(pk=job.pk, state=expected).update(
        state=state,
        problems="\n".join(problems),
        problem_count=len(problems),
        finished_at=timezone.now() if state == ImportJob.State.FAILED else None,
        updated_at=timezone.now(),
    )
    return bool(marked)


class _AlreadyDone(Exception):
    """Another delivery of the task imported the files first: this one writes nothing."""


def check(job_id: int) -> None:
    """The Celery task's work: convert the files and plan the import; nothing is written to the register."""
    job = ImportJob.objects.select_related("organisation").filter(pk=job_id).first()
    if job is None or job.state != ImportJob.State.CHECKING:
        return  # cancelled, swept, or checked already (a message delivered twice)
    progress = JobProgress(job.pk)
    try:
        _convert(job)
        plan = _plan(job, progress)
    except SourceProblem as refused:
        _fail(job, state=ImportJob.State.INVALID, problems=_as_shown(job, [refused.problem]), expected=CHECKING)
        return
    except ImportErrors as errors:
        _fail(job, state=ImportJob.State.INVALID, problems=_as_shown(job, errors.errors), expected=CHECKING)
        return
    except Exception:
        logger.exception("Web import %s: the check stopped on an unexpected error", job.pk)
        _fail(
            job,
            state=ImportJob.State.INVALID,
            problems=[_("The files could not be checked (an unexpected error). Save them again and upload them.")],
            expected=CHECKING,
        )
        return
    finally:
        progress.close()
    ImportJob.objects.filter(pk=job.pk, state=CHECKING).update(
        state=ImportJob.State.READY,
        case_count=plan.case_count,
        event_count=plan.event_count,
        detail_count=plan.detail_count,
        problems="",
        problem_count=0,
        updated_at=timezone.now(),
    )


# --- 3. confirm, and the import itself ------------------------------------------------------------------


def remember_mapping(job: ImportJob) -> None:
    """The organisation's answers for these headers, for its next files (ignored columns too)."""
    for sheet, mapping in job.mapping.items():
        for header, column in mapping.items():
            ImportMapping.objects.update_or_create(
                organisation_id=job.organisation_id,
                sheet=sheet,
                header=header_key(header),
                defaults={"column": column},
            )


def confirm(*, job: ImportJob, user: User, request: Any = None) -> None:
    """Import the checked files (a Celery task, after the commit); refused unless the check found no problem."""
    from casework import tasks

    if not permissions.can_import_cases(user, job.organisation_id):
        raise Refused([_("Your role cannot import cases.")])
    if not broker.queue_available():
        raise QueueUnavailable
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, state=ImportJob.State.READY).update(
            state=ImportJob.State.RUNNING, done=0, total=0, updated_at=timezone.now()
        )
        if not updated:
            raise Refused([_("This import is not ready: check the files first.")])
        remember_mapping(job)
    _send(tasks.run_import, job, queued=RUNNING, back_to=ImportJob.State.READY)


def run(job_id: int) -> None:
    """The Celery task's work: plan again and write it all, or nothing; then delete the uploaded files."""
    job = ImportJob.objects.select_related("organisation", "created_by").filter(pk=job_id).first()
    if job is None or job.state != ImportJob.State.RUNNING:
        return  # done already (a message delivered twice: the state changed with the data), or cancelled
    progress = JobProgress(job.pk, phases=2)
    today = timezone.localdate()

    def in_the_transaction(case_ids: Sequence[int]) -> None:
        # The organisation's follow-up rules, for the cases written (set-based: a few queries in all), and
        # the job marked done with the data: a task delivered again finds it done.
        followups.backfill_rules(organisation_id=job.organisation_id, since=today, case_ids=list(case_ids))
        # Every row written checked now: the access log's head, which every page view waits for, is then held
        # for this row and the commit only, not for the commit's checks of every case, change and task.
        audit_chain.check_deferred_constraints()
        log_access(
            action=AccessLog.Action.IMPORT,
            door=AccessLog.Door.WEB,
            organisation_id=job.organisation_id,
            user=job.created_by,
        )
        if not ImportJob.objects.filter(pk=job.pk, state=ImportJob.State.RUNNING).update(
            state=ImportJob.State.DONE, finished_at=timezone.now()
        ):
            raise _AlreadyDone  # rolls this delivery's writing back

    try:
        with _files(job) as (cases, events), _references_file(job) as references:
            plan = plan_import(cases_file=cases, events_file=events, organisation=job.organisation, progress=progress)
            job.case_count = plan.case_count
            job.event_count = plan.event_count
            job.detail_count = plan.detail_count
            result = apply_import(plan, progress=progress, after_write=in_the_transaction, references_out=references)
    except _AlreadyDone:
        return
    except SourceProblem as refused:
        if _fail(job, state=ImportJob.State.FAILED, problems=_as_shown(job, [refused.problem]), expected=RUNNING):
            delete_files(job)
        return
    except ImportErrors as errors:
        if _fail(job, state=ImportJob.State.FAILED, problems=_as_shown(job, errors.errors), expected=RUNNING):
            delete_files(job)
        return
    except BaseException:
        failed = [_("The import stopped on an error. Nothing was written.")]
        if _fail(job, state=ImportJob.State.FAILED, problems=failed, expected=RUNNING):
            delete_files(job)
        raise
    finally:
        progress.close()
    delete_files(job, keep_references=True)
    ImportJob.objects.filter(pk=job.pk).update(
        done=progress.total,
        total=progress.total,
        case_count=result.cases,
        event_count=result.events,
        detail_count=job.detail_count,
        references_until=timezone.now() + dt.timedelta(hours=settings.IMPORT_REFERENCES_HOURS),
        updated_at=timezone.now(),
    )


@contextmanager
def _references_file(job: ImportJob) -> Iterator[IO[str]]:
    """The references file, written as the cases are: into a file of this delivery's own, put in place when the
    import has committed (a second delivery of the task never empties the first one's), removed otherwise."""
    part = references_path(job).with_name(f"references-{uuid.uuid4().hex}.part")
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(descriptor, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(part, references_path(job))
    finally:
        part.unlink(missing_ok=True)


def cancel(*, job: ImportJob) -> bool:
    """Drop an import that has not started writing; its files are deleted. False if too late."""
    updated = ImportJob.objects.filter(
        pk=job.pk, state__in=[ImportJob.State.MAPPING, ImportJob.State.INVALID, ImportJob.State.READY]
    ).update(state=ImportJob.State.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now())
    if updated:
        delete_files(job)
    return bool(updated)


# --- the references file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class References:
    path: Path
    filename: str


def references(*, job: ImportJob, user: User, request: Any = None) -> References | None:
    """The references file of a finished import, for its importer only and until its time; the download
    is logged. None when there is none (any other user, too late, or the file gone)."""
    if job.created_by_id != user.pk or job.state != ImportJob.State.DONE:
        return None
    if job.references_until is None or job.references_until <= timezone.now():
        return None
    path = references_path(job)
    if not path.exists():
        return None
    log_access(
        action=AccessLog.Action.IMPORT_REFERENCES,
        door=AccessLog.Door.WEB,
        organisation_id=job.organisation_id,
        user=user,
        request=request,
    )
    return References(path=path, filename=f"references-{job.created_at:%Y%m%d-%H%M}.csv")


# --- the sweep -----------------------------------------------------------------------------------------------


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what was left: imports abandoned for IMPORT_UPLOAD_HOURS (their files; state ``expired``),
    references files past their time, directories no job knows (a crash between two steps), and uploads
    a killed worker left spooled (``casework.uploads``)."""
    now = now or timezone.now()
    stale = now - dt.timedelta(hours=settings.IMPORT_UPLOAD_HOURS)
    # A running import is left to its task (time-limited), unless it has run for far longer than any could.
    abandoned = ImportJob.objects.filter(
        state__in=ImportJob.ACTIVE_STATES - {ImportJob.State.RUNNING}, updated_at__lt=stale
    ) | ImportJob.objects.filter(state=ImportJob.State.RUNNING, updated_at__lt=stale - dt.timedelta(hours=24))
    expired = 0
    for job in abandoned.only("pk", "key", "state", "updated_at"):
        # Only if nothing moved it meanwhile (a confirmation at that moment): then its files go.
        marked = ImportJob.objects.filter(pk=job.pk, state=job.state, updated_at=job.updated_at).update(
            state=ImportJob.State.EXPIRED, finished_at=now, updated_at=now
        )
        if marked:
            delete_files(job)
        expired += marked
    references_deleted = 0
    for job in ImportJob.objects.filter(references_until__lt=now).only("pk", "key"):
        delete_files(job)
        references_deleted += ImportJob.objects.filter(pk=job.pk).update(references_until=None)
    spooled = uploads.sweep_stale(older_than=stale.timestamp())
    orphans = 0
    root = Path(settings.IMPORT_PRIVATE_DIR)
    if root.exists():
        known = {
            str(key)
            for key in ImportJob.objects.filter(state__in=ImportJob.ACTIVE_STATES).values_list("key", flat=True)
        }
        known |= {str(key) for key in ImportJob.objects.filter(references_until__gte=now).values_list("key", flat=True)}
        known.add(uploads.UPLOADING)  # swept above, file by file: uploads in progress are in it
        for path in root.iterdir():
            if path.name not in known and path.stat().st_mtime < stale.timestamp():
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                orphans += 1
    return {"expired": expired, "references_deleted": references_deleted, "orphans": orphans, "spooled": spooled}
