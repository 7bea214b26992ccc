"""Celery tasks of the partner API: webhook fan-out and delivery. They take ids, never objects."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.utils import timezone

from partners import webhooks
from partners.models import WebhookDelivery

MAX_DELIVERY_RETRIES = 8


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5, time_limit=60)
def fan_out_status_change(change_id: int) -> int:
    delivery_ids = webhooks.plan_deliveries(change_id)
    for delivery_id in delivery_ids:
        deliver_webhook.delay(delivery_id)
    return len(delivery_ids)


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


@shared_task(acks_late=True, time_limit=300)
def retry_stale_webhook_deliveries() -> int:
    """Beat: re-queue deliveries left pending (e.g. a worker lost its retry)."""
    cutoff = timezone.now() - datetime.timedelta(minutes=30)
    stale = list(
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:1000]
    )
    for delivery_id in stale:
        deliver_webhook.delay(delivery_id)
    return len(stale)
