"""Celery tasks of the partner API: webhook fan-out and delivery. They take ids, never objects."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from casework.models import StatusChange
from partners import webhooks
from partners.models import Share, WebhookDelivery

MAX_DELIVERY_RETRIES = 8


@shared_task(
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
    time_limit=60,
    soft_time_limit=50,
)
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


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_webhooks() -> int:
    """Beat: plan events missed while the broker was down, and re-queue deliveries left pending."""
    now = timezone.now()
    recent = (
        StatusChange.objects.filter(recorded_at__gte=now - datetime.timedelta(days=1))
        .filter(case__shares__in=Share.objects.active(), case__shares__partner__webhooks__is_active=True)
        .values_list("pk", flat=True)
        .distinct()
    )
    for change_id in list(recent[:5000]):
        webhooks.plan_deliveries(change_id)
    cutoff = now - datetime.timedelta(minutes=15)
    stale = list(
        WebhookDelivery.objects.filter(state=WebhookDelivery.State.PENDING)
        .filter(Q(last_attempt_at__lt=cutoff) | Q(last_attempt_at__isnull=True, created_at__lt=cutoff) | Q(attempts=0))
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in stale:
        deliver_webhook.delay(delivery_id)
    return len(stale)
