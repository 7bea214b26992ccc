"""An answered sheet uploaded back, as a job: read in the request, checked and recorded by Celery tasks.

The steps of an ``AnswerSheetJob``:

1. ``start`` (the request): the file is read (``sheets.read_answers``, quick: no lock, no write). A
   problem in it makes the job ``invalid`` at once, with every problem; otherwise the answers found are
   kept on the job (line, reference, answer, date, note: no name) and ``partners.tasks.check_answer_sheet``
   is queued after the commit. State ``checking``.
2. ``check`` (the task): every rule ``services.record_answer`` and the status service apply, made in memory
   (``sheets.check_answers``): nothing is locked or written. State ``invalid`` with every problem as
   ``file:line: column: reason``, or ``ready`` with what recording will do (answers by kind, cases moved).
3. ``confirm`` (the request): ``ready`` becomes ``applying`` under the job's lock, once, and
   ``partners.tasks.apply_answer_sheet`` is queued after the commit.
4. ``apply`` (the task): under the list's lock (two deliveries of the task wait for each other, and the
   second finds the job done), ``sheets.apply_answers`` records every answer through
   ``services.record_answer`` (status service, access log, webhooks outbox, answer trail) in one
   transaction that also marks the job ``done``; a refusal anywhere rolls it all back and the job is
   ``failed`` with every problem. An answer the trail already has is not recorded again.

The answers kept are deleted as soon as the job no longer needs them (invalid, done, failed, cancelled);
``sweep`` (beat, hourly) deletes the jobs older than ``ANSWER_SHEET_JOB_HOURS``.

Steps 1 and 3 raise ``QueueUnavailable``, changing nothing, when the job queue does not answer; a message
the broker refuses in the seconds between leaves the job ``invalid`` (1) or ``ready`` again (3), never
waiting for a task that will not come (``config.broker.send_after_commit``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.permissions import can_record_answers
from config import broker
from partners.lists import services, sheets
from partners.models import AnswerSheetJob, CaseList

logger = logging.getLogger(__name__)

# Progress is written at most this often (a write per row would cost more than the row).
PROGRESS_SECONDS = 0.5
State = AnswerSheetJob.State


class QueueUnavailable(Exception):
    """The job queue does not answer: the sheet cannot be checked or recorded now (nothing was changed)."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "The job queue is unavailable, so the sheet cannot be checked or recorded now. "
                "Nothing was changed: try again in a few minutes."
            )
        )


class JobProgress:
    """The progress bar's figures, written to the job's row at most every ``PROGRESS_SECONDS``.

    Inside the recording's transaction the row is written through a connection of its own on PostgreSQL,
    so that the page sees the progress before the commit (the transaction does not touch the job's row
    until its very end); SQLite (the demo, the tests) has a single writer and writes it in the transaction.
    """

    def __init__(self, job_id: int, total: int) -> None:
        self.job_id = job_id
        self.total = total
        self.done = 0
        self._written_at = 0.0
        self._side: Any = None

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._written_at >= PROGRESS_SECONDS:
            self._written_at = now
            self._write()

    def _write(self) -> None:
        if connection.in_atomic_block and connection.vendor == "postgresql":
            if self._side is None:
                self._side = connections.create_connection("default")
            with self._side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {AnswerSheetJob._meta.db_table} SET done = %s, total = %s WHERE id = %s",  # noqa: S608
                    [self.done, self.total, self.job_id],
                )
            return
        AnswerSheetJob.objects.filter(pk=self.job_id).update(done=self.done, total=self.total)

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


def _stored(answers: list[sheets.SheetAnswer]) -> list[list[Any]]:
    return [[a.line, a.reference, a.answer, a.answered_on.isoformat(), a.note] for a in answers]


def stored_answers(job: AnswerSheetJob) -> list[sheets.SheetAnswer]:
    return [
        sheets.SheetAnswer(int(line), str(reference), str(answer), dt.date.fromisoformat(str(on)), str(note))
        for line, reference, answer, on, note in job.answers
    ]


def _problem_lines(errors: sheets.SheetErrors) -> tuple[str, int]:
    lines = [str(problem) for problem in errors.problems]
    return "\n".join(lines), len(lines)


# --- 1. upload ------------------------------------------------------------------------------------


def start(*, case_list: CaseList, user: User, name: str, data: bytes) -> AnswerSheetJob:
    """A job for an uploaded sheet: ``invalid`` at once when the file has problems, else ``checking``."""
    from partners import tasks

    if not can_record_answers(user, case_list.organisation_id):
        raise PermissionDenied(_("Your role cannot record answers."))
    if not broker.queue_available():
        raise QueueUnavailable
    job = AnswerSheetJob(case_list=case_list, uploaded_by=user, file_name=name[:120])
    try:
        answers = sheets.read_answers(name=name, data=data, case_list=case_list)
    except sheets.SheetErrors as errors:
        job.state = State.INVALID
        job.problems, job.problem_count = _problem_lines(errors)
        job.finished_at = timezone.now()
        job.save()
        return job
    job.answers = _stored(answers)
    job.total = len(answers)
    job.save()

    def not_checked() -> None:
        problem = f"{job.file_name}: " + _("The job queue was unavailable: the sheet was not checked. Upload it again.")
        AnswerSheetJob.objects.filter(pk=job.pk, state=State.CHECKING).update(
            state=State.INVALID, answers=[], problems=problem, problem_count=1, finished_at=timezone.now()
        )

    if not broker.send_after_commit(tasks.check_answer_sheet, job.pk, on_failure=not_checked):
        raise QueueUnavailable
    return job


# --- 2. the check -------------------------------------------------------------------------------------


def check(job_id: int) -> None:
    """The task's work: every rule checked in memory; nothing written but the job's own row."""
    job = AnswerSheetJob.objects.select_related("case_list", "uploaded_by").filter(pk=job_id).first()
    if job is None or job.state != State.CHECKING:
        return  # cancelled, swept, or checked already (a message delivered twice)
    answers = stored_answers(job)
    progress = JobProgress(job.pk, len(answers))
    try:
        preview = sheets.check_answers(
            name=job.file_name,
            case_list=job.case_list,
            answers=answers,
            answerer=services.Answerer(user=job.uploaded_by),
            progress=progress,
        )
    except sheets.SheetErrors as errors:
        problems, count = _problem_lines(errors)
        _finish_check(job.pk, state=State.INVALID, problems=problems, problem_count=count, answers=[])
        return
    finally:
        progress.close()
    _finish_check(
        job.pk,
        state=State.READY,
        answer_count=preview.answers,
        move_count=preview.moves,
        known_count=preview.known,
        kind_counts=preview.kinds,
    )


def _finish_check(job_id: int, *, state: str, **values: Any) -> None:
    with transaction.atomic():
        job = AnswerSheetJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != State.CHECKING:
            return  # cancelled meanwhile: it stays so
        job.state = state
        job.done = job.total
        for name, value in values.items():
            setattr(job, name, value)
        if state == State.INVALID:
            job.finished_at = timezone.now()
        job.save()


# --- 3. confirm, cancel -------------------------------------------------------------------------------


def confirm(*, job: AnswerSheetJob, user: User) -> bool:
    """Have a ready job recorded (once: a second confirmation finds it applying or done)."""
    from partners import tasks

    if not can_record_answers(user, job.case_list.organisation_id):
        raise PermissionDenied(_("Your role cannot record answers."))
    if not broker.queue_available():
        raise QueueUnavailable
    with transaction.atomic():
        locked = AnswerSheetJob.objects.select_for_update().filter(pk=job.pk).first()
        if locked is None or locked.state != State.READY:
            return False
        locked.state = State.APPLYING
        locked.done = 0
        locked.confirmed_at = timezone.now()
        locked.confirmed_by = user
        locked.save()

    def ready_again() -> None:
        AnswerSheetJob.objects.filter(pk=job.pk, state=State.APPLYING).update(
            state=State.READY, confirmed_at=None, confirmed_by=None
        )

    if not broker.send_after_commit(tasks.apply_answer_sheet, job.pk, on_failure=ready_again):
        raise QueueUnavailable
    return True


def cancel(*, job: AnswerSheetJob) -> bool:
    """Cancel a job that writes nothing (checking, invalid, ready): its answers are deleted."""
    with transaction.atomic():
        locked = AnswerSheetJob.objects.select_for_update().filter(pk=job.pk).first()
        if locked is None or locked.state not in AnswerSheetJob.CANCELLABLE_STATES:
            return False
        locked.state = State.CANCELLED
        locked.answers = []
        locked.finished_at = timezone.now()
        locked.save()
    return True


# --- 4. the recording ---------------------------------------------------------------------------------


def apply(job_id: int) -> None:
    """The task's work: every answer recorded through the services, and the job done, in one transaction."""
    job = AnswerSheetJob.objects.select_related("case_list", "uploaded_by").filter(pk=job_id).first()
    if job is None or job.state != State.APPLYING:
        return  # done already (a message delivered twice), or swept
    answers = stored_answers(job)
    user = job.confirmed_by or job.uploaded_by
    progress = JobProgress(job.pk, len(answers))
    try:
        with transaction.atomic():
            # The list's lock first (record_answer takes it too): a second delivery of this task waits
            # here, then finds the job done and records nothing.
            CaseList.objects.select_for_update(no_key=True).filter(pk=job.case_list_id).first()
            if not AnswerSheetJob.objects.filter(pk=job.pk, state=State.APPLYING).exists():
                return
            made = sheets.apply_answers(
                name=job.file_name,
                case_list=job.case_list,
                answers=answers,
                answerer=services.Answerer(user=user),
                progress=progress,
            )
            progress.close()
            locked = AnswerSheetJob.objects.select_for_update().get(pk=job.pk)
            locked.state = State.DONE
            locked.done = locked.total
            locked.recorded_count = len(made)
            locked.moved_count = sum(1 for answer in made if answer.status_change_id is not None)
            locked.answers = []
            locked.finished_at = timezone.now()
            locked.save()
    except sheets.SheetErrors as errors:
        problems, count = _problem_lines(errors)
        _fail(job.pk, problems=problems, problem_count=count)
    except Exception:
        logger.exception("The answered sheet of job %s could not be recorded", job.pk)
        _fail(
            job.pk,
            problems=f"{job.file_name}: " + _("The recording stopped on an unexpected error. Nothing was recorded."),
            problem_count=1,
        )
    finally:
        progress.close()


def _fail(job_id: int, *, problems: str, problem_count: int) -> None:
    with transaction.atomic():
        job = AnswerSheetJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != State.APPLYING:
            return
        job.state = State.FAILED
        job.problems = problems
        job.problem_count = problem_count
        job.answers = []
        job.finished_at = timezone.now()
        job.save()


# --- the sweep ----------------------------------------------------------------------------------------


def sweep(*, now: dt.datetime | None = None) -> int:
    """Jobs older than ``ANSWER_SHEET_JOB_HOURS`` deleted, their answers with them; returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(hours=settings.ANSWER_SHEET_JOB_HOURS)
    # A recording confirmed late in the job's day is not pulled from under its task.
    stale = AnswerSheetJob.objects.filter(created_at__lt=cutoff).exclude(state=State.APPLYING, confirmed_at__gte=cutoff)
    deleted, _detail = stale.delete()
    return deleted
