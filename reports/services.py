"""Writes of the figures: requesting, queuing, computing, restarting and failing snapshots.

A snapshot goes queued -> running -> done (or failed). A worker *claims* a
queued snapshot (a conditional update: running, a random claim, a heartbeat,
one more attempt), reads the register in one transaction (REPEATABLE READ on
PostgreSQL) while a thread refreshes the heartbeat every
``SNAPSHOT_HEARTBEAT_SECONDS``, and writes the figures, the data fingerprint
and the ``done`` mark in one statement that holds only if its claim does. A
worker killed at any moment leaves the snapshot queued or running with
nothing half-written.

A running snapshot whose heartbeat is older than ``SNAPSHOT_STALL_SECONDS``
lost its worker: ``sweep_stalled_snapshots`` (beat, every minute) queues it
again, or fails it after ``MAX_ATTEMPTS``. Every step is a conditional
update, so two sweeps restart it once, two copies of its message compute it
once, and a worker thought lost that finishes after the restart finds its
claim gone and writes nothing. Times compared with the heartbeat are the
database's, so the clocks of workers and beat need not agree.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connections, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from config import broker
from reports.figures import (
    FiguresInconsistent,
    compute_figures_by_organisation,
    compute_release_series,
    consistent_read,
    data_fingerprint,
    with_extra_figures,
    with_extra_series,
)
from reports.models import Snapshot

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# A snapshot started this many times is failed, not tried for ever: one that kills its worker each time
# (out of memory, the hard time limit) would otherwise be restarted for ever. Above the task's retries (5) + 1.
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
        # One computation at a time per person, and a few at most for everyone: the workers also deliver
        # webhooks and e-mail, which a stream of requests must not starve (found by probing). The lock on
        # the person's row makes two requests sent at once wait for each other.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        open_requests = Snapshot.objects.filter(trigger=Snapshot.Trigger.REQUEST, state__in=Snapshot.OPEN_STATES)
        if open_requests.filter(requested_by=user).exists():
            raise ValidationError(
                {"as_of": [_("Figures you asked for are still being computed: wait until they are done.")]}
            )
        if open_requests.count() >= settings.SNAPSHOT_MAX_OPEN_REQUESTS:
            raise ValidationError(
                {"as_of": [_("Several computations are already under way: try again when they are done.")]}
            )
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
    """Fail a snapshot that is still open; a done snapshot is never touched.

    Nor is one that another worker, alive, is computing (a copy of the message
    that failed before it could claim the snapshot): that worker finishes it.
    """
    updated = (
        Snapshot.objects.filter(pk=snapshot_id, state__in=Snapshot.OPEN_STATES)
        .exclude(Q(state=Snapshot.State.RUNNING) & ~_silent())
        .update(state=Snapshot.State.FAILED, error=error[:2000], finished_at=timezone.now(), claim="")
    )
    return bool(updated)


def schedule_nightly(*, today: dt.date | None = None) -> Snapshot:
    """Beat, every night: the snapshot as of the day that ended, once however often the beat fires.

    Snapshots whose worker was lost, or whose message was, are the sweep's
    (``sweep_stalled_snapshots``, every minute).
    """
    as_of = (today or timezone.localdate()) - dt.timedelta(days=1)
    with transaction.atomic():
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
    """Compute and store a snapshot's figures, once. Returns the snapshot's state afterwards.

    Nothing happens to a snapshot that is done, failed, or being computed by a
    worker that is alive (another copy of its message): it returns its state.
    """
    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        return "missing"
    if not snapshot.is_open:
        return snapshot.state  # done or failed already: a redelivered or duplicate message
    claim = _claim(snapshot_id)
    if claim is None:
        if (
            _claimable(snapshot_id)
            .filter(attempts__gte=MAX_ATTEMPTS)
            .update(
                state=Snapshot.State.FAILED,
                error=gave_up_message(snapshot.attempts),
                finished_at=timezone.now(),
                claim="",
            )
        ):
            return Snapshot.State.FAILED
        return _state(snapshot_id)  # running on a live worker, or finished meanwhile
    started = time.perf_counter()
    try:
        with heartbeat(snapshot_id=snapshot_id, claim=claim):
            with consistent_read():
                source = data_fingerprint()
                exact, per_organisation = with_extra_figures(
                    *compute_figures_by_organisation(as_of=snapshot.as_of), as_of=snapshot.as_of
                )
                # A release's snapshot also holds what the release protects, read in the same transaction.
                series = (
                    with_extra_series(
                        compute_release_series(as_of=snapshot.as_of, expected=exact), as_of=snapshot.as_of
                    )
                    if snapshot.trigger == Snapshot.Trigger.RELEASE
                    else None
                )
                _pause_for_tests()
            # After the reading transaction: under REPEATABLE READ, updating a row a heartbeat changed
            # meanwhile would fail. One statement, so it is all written or none of it.
            written = Snapshot.objects.filter(pk=snapshot_id, state=Snapshot.State.RUNNING, claim=claim).update(
                state=Snapshot.State.DONE,
                exact=exact,
                series=series,
                by_organisation={str(pk): figures for pk, figures in per_organisation.items()},
                source_cases=source["cases"],
                source_status_changes=source["status_changes"],
                source_last_change_id=source["last_status_change_id"],
                source_last_case_update=source["last_case_update"],
                finished_at=timezone.now(),
                duration_ms=round((time.perf_counter() - started) * 1000),
                error="",
                claim="",
            )
    except BaseException:
        _release(snapshot_id, claim)
        raise
    if not written:
        logger.warning(
            "Figures snapshot %s was restarted while this worker computed it (no heartbeat seen for %s s): "
            "its result is dropped.",
            snapshot_id,
            settings.SNAPSHOT_STALL_SECONDS,
        )
        return _state(snapshot_id)
    return Snapshot.State.DONE


def gave_up_message(attempts: int) -> str:
    return _(
        "Gave up after %(attempts)s attempts: the computation stopped each time "
        "(a worker lost, the time limit or the database)."
    ) % {"attempts": attempts}


def _state(snapshot_id: int) -> str:
    return Snapshot.objects.filter(pk=snapshot_id).values_list("state", flat=True).first() or "missing"


def _silent() -> Q:
    """No sign of life for longer than SNAPSHOT_STALL_SECONDS, by the database's clock."""
    cutoff = Now() - dt.timedelta(seconds=settings.SNAPSHOT_STALL_SECONDS)
    return (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, state=Snapshot.State.RUNNING)
        | Q(heartbeat_at__isnull=True, requested_at__lt=cutoff)
    )


def _claimable(snapshot_id: int) -> QuerySet[Snapshot]:
    """The snapshot, if a worker may start computing it: queued, or running on a worker gone silent."""
    return Snapshot.objects.filter(pk=snapshot_id).filter(
        Q(state=Snapshot.State.QUEUED) | (Q(state=Snapshot.State.RUNNING) & _silent())
    )


def _claim(snapshot_id: int) -> str | None:
    """Mark the snapshot running under a new claim, committed on its own (the page shows "being computed")."""
    claim = secrets.token_hex(16)
    claimed = (
        _claimable(snapshot_id)
        .filter(attempts__lt=MAX_ATTEMPTS)
        .update(
            state=Snapshot.State.RUNNING,
            claim=claim,
            started_at=timezone.now(),
            heartbeat_at=Now(),
            attempts=F("attempts") + 1,
        )
    )
    return claim if claimed else None


def _release(snapshot_id: int, claim: str) -> None:
    """After an error: queued again (a retry claims it at once, or the task fails it). Best effort."""
    try:
        with transaction.atomic():
            Snapshot.objects.filter(pk=snapshot_id, state=Snapshot.State.RUNNING, claim=claim).update(
                state=Snapshot.State.QUEUED, claim="", heartbeat_at=Now()
            )
    except DatabaseError:
        # The database is away: the sweep finds the snapshot silent and queues it again.
        logger.warning("Could not release figures snapshot %s after an error", snapshot_id, exc_info=True)


def beat(*, snapshot_id: int, claim: str) -> bool:
    """One heartbeat of the computation holding ``claim``; False when it no longer holds it."""
    return bool(
        Snapshot.objects.filter(pk=snapshot_id, state=Snapshot.State.RUNNING, claim=claim).update(heartbeat_at=Now())
    )


@contextmanager
def heartbeat(*, snapshot_id: int, claim: str) -> Iterator[None]:
    """Beat every SNAPSHOT_HEARTBEAT_SECONDS while the block runs, from a thread with its own connection.

    A thread, because the computation is one long SQL statement. Only where a
    sweep may act on the beats, that is where tasks go through a broker:
    in-process (no Redis: the demo, the SQLite tests) there is no beat, and
    SQLite would make the second connection wait for the computation's.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=_beat_until, args=(snapshot_id, claim, stop), name=f"snapshot-{snapshot_id}-heartbeat", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _beat_until(snapshot_id: int, claim: str, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.SNAPSHOT_HEARTBEAT_SECONDS):
            try:
                if not beat(snapshot_id=snapshot_id, claim=claim):
                    logger.warning("Figures snapshot %s: this worker's claim was taken over", snapshot_id)
                    return
            except DatabaseError:
                logger.warning("Figures snapshot %s: a heartbeat failed", snapshot_id, exc_info=True)
    finally:
        connections.close_all()  # this thread's connection


@dataclass
class Sweep:
    """What a sweep did, by snapshot id."""

    restarted: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"restarted": len(self.restarted), "requeued": len(self.requeued), "failed": len(self.failed)}


def sweep_stalled_snapshots(*, limit: int = 100) -> Sweep:
    """Beat, every minute: restart the snapshots whose worker was lost, and send again those queued too long.

    Running with no heartbeat for SNAPSHOT_STALL_SECONDS: queued again (the
    page says when), or failed after MAX_ATTEMPTS. Queued for that long: its
    message may have been lost with the broker's data, so it is sent again
    (a copy finds it claimed and does nothing). Each change is conditional on
    what was seen, so a second sweep, a heartbeat or a claim in between wins
    and this sweep leaves that snapshot alone.
    """
    sweep = Sweep()
    seen = (
        Snapshot.objects.filter(state__in=Snapshot.OPEN_STATES)
        .filter(_silent())
        .order_by("pk")
        .values_list("pk", "state", "claim", "attempts")[:limit]
    )
    for snapshot_id, state, claim, attempts in list(seen):
        outcome = sweep_snapshot(snapshot_id=snapshot_id, state=state, claim=claim, attempts=attempts)
        if outcome is not None:
            getattr(sweep, outcome).append(snapshot_id)
    return sweep


def sweep_snapshot(*, snapshot_id: int, state: str, claim: str, attempts: int) -> str | None:
    """Act on one silent snapshot as the sweep saw it: "restarted", "requeued", "failed", or None if it changed."""
    unchanged = Snapshot.objects.filter(pk=snapshot_id, state=state, claim=claim, attempts=attempts).filter(_silent())
    if state == Snapshot.State.QUEUED:
        if not unchanged.update(heartbeat_at=Now()):
            return None
        queue_snapshot(snapshot_id)
        return "requeued"
    if attempts >= MAX_ATTEMPTS:
        failed = unchanged.update(
            state=Snapshot.State.FAILED, error=gave_up_message(attempts), finished_at=timezone.now(), claim=""
        )
        return "failed" if failed else None
    if not unchanged.update(state=Snapshot.State.QUEUED, claim="", heartbeat_at=Now(), restarted_at=Now()):
        return None
    logger.warning("Figures snapshot %s lost its worker (attempt %s): queued again", snapshot_id, attempts)
    queue_snapshot(snapshot_id)
    return "restarted"


def silent_since(snapshot: Snapshot, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the worker computing ``snapshot`` was last heard of, if that is longer ago than the sweep allows."""
    if snapshot.state != Snapshot.State.RUNNING:
        return None
    last = snapshot.heartbeat_at or snapshot.started_at or snapshot.requested_at
    if (now or timezone.now()) - last <= dt.timedelta(seconds=settings.SNAPSHOT_STALL_SECONDS):
        return None
    return last


def _pause_for_tests() -> None:
    """A hook the crash tests' worker replaces with a pause (tests/celery_worker.py); nothing in production."""
