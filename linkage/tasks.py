"""Celery tasks of linkage: an import's candidates, and the sweep of cases still waiting for theirs.

``find_candidates`` takes a job's id (queued after the import commits); ``sweep_waiting`` takes none:
beat runs it (config/settings.py, CELERY_BEAT_SCHEDULE), so that cases whose search was lost (a worker
died, the broker was down, a search after an edit failed) are matched within minutes.
"""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from linkage import services
from linkage.models import MatchJob

logger = logging.getLogger(__name__)
# A running job that gave no sign of life for this long lost its worker: the sweep starts another.
STALE_JOB = datetime.timedelta(minutes=10)


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3540, max_retries=3)
def find_candidates(job_id: int) -> int:
    """Match the cases waiting for their candidates; returns how many pairs were found."""
    job = services.run_job(job_id)
    return job.found if job is not None else 0


def queue_job(job_id: int) -> None:
    """Queue a job once its import committed. A broker that does not answer never fails the import that
    was written: the job waits, and the sweep starts another when the broker is back."""
    try:
        find_candidates.delay(job_id)
    except Exception as error:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise  # the job ran here and failed: say so
        logger.error("linkage: job %s not queued (%s); the sweep will start one", job_id, type(error).__name__)


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3540)
def sweep_waiting() -> int:
    """Beat: when cases wait for their candidates and no live job is on them, start a job. Returns the
    number of cases waiting."""
    waiting = services.waiting_count()
    if not waiting:
        return 0
    alive = timezone.now() - STALE_JOB
    if (
        MatchJob.objects.filter(state__in=[MatchJob.State.QUEUED, MatchJob.State.RUNNING])
        .filter(heartbeat_at__gte=alive)
        .exists()
        or MatchJob.objects.filter(state=MatchJob.State.QUEUED, created_at__gte=alive).exists()
    ):
        return waiting
    MatchJob.objects.filter(state__in=[MatchJob.State.QUEUED, MatchJob.State.RUNNING]).update(
        state=MatchJob.State.FAILED, error="WorkerLost", finished_at=timezone.now()
    )
    job = MatchJob.objects.create(total=waiting)
    find_candidates.delay(job.pk)
    return waiting
