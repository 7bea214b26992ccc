"""Celery tasks of the partner door: announcing status changes and delivering webhooks. They take ids, never objects.

``announce_status_changes`` and ``sweep_webhooks`` take no argument: beat runs
them (config/settings.py, CELERY_BEAT_SCHEDULE). ``deliver_webhook`` is queued
for one delivery.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from partners import announcements, webhooks
from partners.models import WebhookDelivery

MAX_DELIVERY_RETRIES = 8
# A pending delivery not attempted for this long lost its task (a worker died, the broker was down).
STALE_DELIVERY = datetime.timedelta(minutes=15)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def announce_status_changes() -> int:
    """Claim the outboxes' unprocessed status and list events and queue their webhook deliveries (nudged, and on
    beat)."""
    planned = 0
    for claim in (announcements.claim_and_plan, announcements.claim_and_plan_list_events):
        while True:
            claimed, delivery_ids = claim()
            for delivery_id in delivery_ids:
                deliver_webhook.delay(delivery_id)
            planned += len(delivery_ids)
            if claimed < announcements.BATCH:
                break
    return planned


@shared_task(bind=True, acks_late=True, max_retries=MAX_DELIVERY_RETRIES, time_limit=60, soft_time_limit=45)
def deliver_webhook(self, delivery_id: int) -> bool:  # type: ignore[no-untyped-def]
    # Eagerly (no Redis: the demo) a retry would block the request that caused it; try once.
    final = self.request.is_eager or self.request.retries >= MAX_DELIVERY_RETRIES
    try:
        return webhooks.attempt_delivery(delivery_id, final=final)
    except webhooks.DeliveryFailed as exc:
        if final:
            return False
        # Exponential backoff: 10 s, 20 s, 40 s ... capped at an hour.
        raise self.retry(exc=exc, countdown=min(3600, 10 * 2**self.request.retries)) from exc


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_webhooks() -> int:
    """Beat: re-queue deliveries left pending (their task was lost). Returns how many."""
    cutoff = timezone.now() - STALE_DELIVERY
    stale = list(
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING)
        .filter(Q(last_attempt_at__lt=cutoff) | Q(last_attempt_at__isnull=True, created_at__lt=cutoff))
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in stale:
        deliver_webhook.delay(delivery_id)
    return len(stale)


# --- an answered sheet uploaded back to a list (partners.lists.sheet_jobs): queued after the commit ------


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def check_answer_sheet(job_id: int) -> None:
    """Check every answer of an uploaded sheet (in memory): every problem, or what recording will do."""
    from partners.lists import sheet_jobs

    sheet_jobs.check(job_id)


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def apply_answer_sheet(job_id: int) -> None:
    """Record a checked, confirmed sheet: every answer in one transaction, or none."""
    from partners.lists import sheet_jobs

    sheet_jobs.apply(job_id)


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540, autoretry_for=(ConnectionError,), retry_backoff=True)
def sweep_answer_sheets() -> int:
    """Hourly: answered-sheet jobs older than ANSWER_SHEET_JOB_HOURS deleted, with the answers they keep."""
    from partners.lists import sheet_jobs

    return sheet_jobs.sweep()
