"""Celery tasks of the figures. They take ids, never objects, and are idempotent.

``compute_snapshot_task`` acknowledges its message only when it has
finished (``acks_late``): a message taken by a worker that dies before it
starts is handed back (after the broker's visibility timeout). It retries
with exponential backoff and jitter when the database is briefly
unavailable, and stops at its time limits. A worker lost while computing is
noticed by its heartbeat, not by the broker: ``sweep_stalled_snapshots_task``
(beat, every minute) restarts the snapshot within ``SNAPSHOT_STALL_SECONDS``
plus a minute, and counts the attempts. So ``reject_on_worker_lost`` is off:
a pool process killed mid-task (out of memory, the hard time limit) has its
message acknowledged rather than put straight back, where a snapshot that
kills its worker would loop; the sweep restarts it, at most
``MAX_ATTEMPTS`` times. A late copy of the message (the visibility timeout)
finds the snapshot done, or claimed by a live worker, and does nothing.
What the tasks do is in ``reports.services``.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import InterfaceError, OperationalError

from reports import services

# Exponential backoff with full jitter: up to 5 s, 10 s, 20 s ... capped at 5 minutes.
RETRY_BACKOFF_SECONDS = 5
RETRY_BACKOFF_MAX_SECONDS = 300
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    bind=True,
    name="reports.compute_snapshot",
    acks_late=True,
    reject_on_worker_lost=False,
    max_retries=5,
    soft_time_limit=settings.FIGURES_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.FIGURES_TASK_TIME_LIMIT,
)
def compute_snapshot_task(self: Task[Any, Any], snapshot_id: int) -> str:
    try:
        return services.compute_snapshot(snapshot_id)
    except TRANSIENT_ERRORS as exc:
        # In-process (no Redis) a retry would hold up the web request that asked: fail at once instead.
        if self.request.is_eager or self.request.retries >= (self.max_retries or 0):
            services.mark_failed(snapshot_id, error=services.failure_reason(exc))
            raise
        countdown = get_exponential_backoff_interval(
            factor=RETRY_BACKOFF_SECONDS,
            retries=self.request.retries,
            maximum=RETRY_BACKOFF_MAX_SECONDS,
            full_jitter=True,
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except Exception as exc:
        # Not worth retrying (the time limit, a broken history): say why on the snapshot.
        services.mark_failed(snapshot_id, error=services.failure_reason(exc))
        raise


@shared_task(
    name="reports.nightly_snapshot",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=5,
    soft_time_limit=50,
    time_limit=60,
)
def nightly_snapshot_task() -> int:
    """Celery beat, every night (CELERY_BEAT_SCHEDULE): queue the snapshot of the day that ended."""
    return services.schedule_nightly().pk


@shared_task(name="reports.sweep_stalled_snapshots", acks_late=True, soft_time_limit=50, time_limit=60)
def sweep_stalled_snapshots_task() -> dict[str, int]:
    """Celery beat, every minute (CELERY_BEAT_SCHEDULE): restart the snapshots whose worker was lost."""
    return services.sweep_stalled_snapshots().counts()
