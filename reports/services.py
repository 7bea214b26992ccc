"""Writes of the figures: requesting, queuing, computing and failing snapshots.

A snapshot goes queued -> running -> done (or failed). The figures, the
data fingerprint and the ``done`` mark are written in one transaction, which
also reads the register (REPEATABLE READ on PostgreSQL): a worker killed at
any moment leaves the snapshot queued or running with nothing half-written,
and the redelivered task computes it again. ``compute_snapshot`` is
idempotent: on a snapshot that is no longer open it does nothing, and the
row lock makes two deliveries of the same task finish it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from reports import broker
from reports.disclosure import publish
from reports.figures import FiguresInconsistent, compute_figures_by_organisation, consistent_read, data_fingerprint
from reports.models import Snapshot

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# A snapshot started this many times is failed, not tried for ever: a worker lost at each try (a crash,
# the hard time limit) has its message redelivered again and again. Above the task's retries (5) + 1.
MAX_ATTEMPTS = 8


class NotPermitted(PermissionDenied):
    """The user's role may not do this."""


def queue_unavailable_message() -> str:
    return _("Could not queue the computation: the job queue is unavailable. Try again later.")


def can_request_snapshots(user: User) -> bool:
    return permissions.can_request_snapshots(user)


def request_snapshot(*, user: User, as_of: dt.date) -> Snapshot:
    """A supervisor or analyst asks for the figures as of ``as_of``; computed by a worker after commit."""
    if not can_request_snapshots(user):
        raise NotPermitted(_("Only supervisors and analysts may request new figures."))
    if as_of > timezone.localdate():
        raise ValidationError({"as_of": [_("The date is in the future: figures can only describe the past.")]})
    if not broker.queue_available():
        raise ValidationError({"as_of": [queue_unavailable_message()]})
    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            as_of=as_of, trigger=Snapshot.Trigger.REQUEST, requested_by=user, min_cell=settings.FIGURES_MIN_CELL
        )
        queue_snapshot(snapshot.pk)
    return snapshot


def queue_snapshot(snapshot_id: int) -> None:
    """Queue the computation once the current transaction commits (nothing is queued if it rolls back)."""
    transaction.on_commit(partial(_send, snapshot_id))


def _send(snapshot_id: int) -> None:
    from reports.tasks import compute_snapshot_task

    # A queue of its own only when one is configured (the crash tests' worker listens on its own).
    routing: dict[str, Any] = {"queue": settings.FIGURES_QUEUE} if settings.FIGURES_QUEUE else {}
    try:
        compute_snapshot_task.apply_async(args=(snapshot_id,), retry=False, **routing)
    except Exception as exc:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # The task ran here and failed; it has recorded why on the snapshot (this keeps any first reason).
            logger.exception("Computing figures snapshot %s failed", snapshot_id)
            mark_failed(snapshot_id, error=failure_reason(exc))
            return
        # The snapshot row is committed: never turn a broker outage into an error page.
        logger.exception("Could not queue figures snapshot %s", snapshot_id)
        broker.forget()
        mark_failed(snapshot_id, error=queue_unavailable_message())


def failure_reason(exc: BaseException) -> str:
    """Why a computation failed, in words for the figures page (details go to the log)."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return _("The computation took longer than its time limit (%(seconds)s s).") % {
            "seconds": settings.FIGURES_TASK_SOFT_TIME_LIMIT
        }
    if isinstance(exc, FiguresInconsistent):
        logger.error("Figures not computed: %s", exc)
        return _(
            "The status history does not add up (a change's “from” status is not the status before it), "
            "so the figures would be wrong; the server log names the numbers."
        )
    if isinstance(exc, OperationalError | InterfaceError):
        return _("The database could not be reached, even after several retries.")
    return _("The computation failed (%(error)s); the server log has the details.") % {"error": type(exc).__name__}


def mark_failed(snapshot_id: int, *, error: str) -> bool:
    """Fail a snapshot that is still open; a done snapshot is never touched."""
    updated = Snapshot.objects.filter(pk=snapshot_id, state__in=Snapshot.OPEN_STATES).update(
        state=Snapshot.State.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    return bool(updated)


def schedule_nightly(*, today: dt.date | None = None) -> Snapshot:
    """Beat, every night: the snapshot as of the day that ended, once however often the beat fires.

    Snapshots left open for longer than a task may run (a message lost with
    the broker's data) are queued again; the task is idempotent.
    """
    as_of = (today or timezone.localdate()) - dt.timedelta(days=1)
    stale_before = timezone.now() - dt.timedelta(seconds=2 * settings.FIGURES_TASK_TIME_LIMIT)
    with transaction.atomic():
        for stale_id in Snapshot.objects.filter(
            state__in=Snapshot.OPEN_STATES, requested_at__lt=stale_before
        ).values_list("pk", flat=True)[:100]:
            queue_snapshot(stale_id)
        existing = (
            Snapshot.objects.filter(trigger=Snapshot.Trigger.NIGHTLY, as_of=as_of)
            .exclude(state=Snapshot.State.FAILED)
            .first()
        )
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                snapshot = Snapshot.objects.create(
                    as_of=as_of, trigger=Snapshot.Trigger.NIGHTLY, min_cell=settings.FIGURES_MIN_CELL
                )
        except IntegrityError:
            # Another beat created it between our look and our insert.
            return (
                Snapshot.objects.filter(trigger=Snapshot.Trigger.NIGHTLY, as_of=as_of)
                .exclude(state=Snapshot.State.FAILED)
                .get()
            )
        queue_snapshot(snapshot.pk)
    return snapshot


def create_command_snapshot(*, as_of: dt.date, reuse: bool = False) -> Snapshot:
    """A snapshot asked for from the command line, computed here with the task's code; returned once done.

    ``reuse``: when a snapshot as of that date is already done, return it instead of computing another
    (so that a script, such as ``make demo``, can run again without piling up snapshots).
    """
    if reuse:
        done = Snapshot.objects.filter(as_of=as_of, state=Snapshot.State.DONE).order_by("-finished_at").first()
        if done is not None:
            return done
    snapshot = Snapshot.objects.create(
        as_of=as_of, trigger=Snapshot.Trigger.COMMAND, min_cell=settings.FIGURES_MIN_CELL
    )
    compute_snapshot(snapshot.pk)
    snapshot.refresh_from_db()
    return snapshot


def compute_snapshot(snapshot_id: int) -> str:
    """Compute and store a snapshot's figures, once. Returns the snapshot's state afterwards."""
    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        return "missing"
    if not snapshot.is_open:
        return snapshot.state  # done or failed already: a redelivered or duplicate message
    if snapshot.attempts >= MAX_ATTEMPTS:
        mark_failed(
            snapshot_id,
            error=_(
                "Gave up after %(attempts)s attempts: the computation stopped each time "
                "(a worker lost, the time limit or the database)."
            )
            % {"attempts": snapshot.attempts},
        )
        return Snapshot.State.FAILED
    # Committed on its own, so that the page shows "running" while the figures are computed.
    Snapshot.objects.filter(pk=snapshot_id, state__in=Snapshot.OPEN_STATES).update(
        state=Snapshot.State.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1
    )
    started = time.perf_counter()
    with consistent_read():
        locked = Snapshot.objects.select_for_update().filter(pk=snapshot_id).first()
        if locked is None or not locked.is_open:
            return locked.state if locked else "missing"
        source = data_fingerprint()
        exact, per_organisation = compute_figures_by_organisation(as_of=locked.as_of)
        published = publish(exact, k=locked.min_cell)
        _pause_for_tests()
        Snapshot.objects.filter(pk=snapshot_id).update(
            state=Snapshot.State.DONE,
            exact=exact,
            published=published,
            by_organisation={str(pk): figures for pk, figures in per_organisation.items()},
            source_cases=source["cases"],
            source_status_changes=source["status_changes"],
            source_last_change_id=source["last_status_change_id"],
            source_last_case_update=source["last_case_update"],
            finished_at=timezone.now(),
            duration_ms=round((time.perf_counter() - started) * 1000),
            error="",
        )
    return Snapshot.State.DONE


def _pause_for_tests() -> None:
    """A hook the crash tests' worker replaces with a pause (tests/celery_worker.py); nothing in production."""
