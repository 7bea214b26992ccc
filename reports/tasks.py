"""Celery tasks of the figures. They take ids, never objects, and are idempotent.

``compute_snapshot_task`` acknowledges its message only when it has
finished (``acks_late``) and is redelivered if its worker dies
(``reject_on_worker_lost``); it retries with exponential backoff and jitter
when the database is briefly unavailable, and stops at its time limits. What the
task does is in ``reports.services.compute_snapshot``.
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
    reject_on_worker_lost=True,
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
