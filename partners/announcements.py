"""Status changes and list events announced to partners: the outboxes (StatusEvent, ListEvent), claimed here.

casework writes a StatusEvent in the transaction of every status change and,
after commit, sends ``status_change_recorded``. The receiver here only nudges
a worker; the worker claims the unprocessed events (several workers never
claim the same one), plans one webhook delivery per active endpoint of each
partner the case is shared with (``WebhookDelivery`` is unique per endpoint
and change: exactly once per endpoint), marks the events processed, and
queues the deliveries after commit. If anything fails, the events stay
unprocessed and the periodic sweep (beat, every minute) claims them again.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from casework.models import StatusChange, StatusEvent
from casework.signals import status_change_recorded
from partners.models import ListEvent

logger = logging.getLogger(__name__)

BATCH = 500


def _nudge(sender: Any, change_id: int, **kwargs: Any) -> None:
    nudge(f"status change {change_id}")


def nudge(what: str) -> None:
    """Queue the announcement task; if the broker is down, the sweep announces the waiting events."""
    from partners.tasks import announce_status_changes

    try:
        announce_status_changes.delay()
    except Exception:
        # The change is committed and its event waits in the outbox: the sweep announces it.
        logger.exception("Could not queue the announcement of %s; the sweep will", what)


def connect() -> None:
    status_change_recorded.connect(_nudge, sender=StatusChange, dispatch_uid="partners.announcements.nudge")


def claim_and_plan(*, batch: int = BATCH) -> tuple[int, list[int]]:
    """Claim up to ``batch`` unprocessed events, plan their deliveries, mark them processed.

    Returns how many events were claimed, and the ids of the deliveries to send (to queue after commit).
    """
    from partners import webhooks

    delivery_ids: list[int] = []
    with transaction.atomic():
        events = list(
            StatusEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")
            .values_list("pk", "status_change_id")[:batch]
        )
        if not events:
            return 0, []
        for _event_id, change_id in events:
            delivery_ids.extend(webhooks.plan_deliveries(change_id))
        StatusEvent.objects.filter(pk__in=[pk for pk, _change in events]).update(processed_at=timezone.now())
    return len(events), delivery_ids


def claim_and_plan_list_events(*, batch: int = BATCH) -> tuple[int, list[int]]:
    """The same for the events of lists (sent, answered, closed): to the intermediary's active endpoints."""
    from partners import webhooks

    delivery_ids: list[int] = []
    with transaction.atomic():
        events = list(
            ListEvent.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")
            .values_list("pk", flat=True)[:batch]
        )
        if not events:
            return 0, []
        for event_id in events:
            delivery_ids.extend(webhooks.plan_list_deliveries(event_id))
        ListEvent.objects.filter(pk__in=events).update(processed_at=timezone.now())
    return len(events), delivery_ids
