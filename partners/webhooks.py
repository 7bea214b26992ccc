"""Signed webhook events for status changes of shared cases (DESIGN.md section 6).

Each event is JSON, signed with HMAC-SHA256 over ``"<timestamp>.<body>"`` and
sent with the header ``Register-Signature: t=<timestamp>,v1=<hex digest>``.
The signing secret is derived from the server key and the endpoint's salt, so
it is never stored; it is shown once when the endpoint is created.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import Organisation, User
from accounts.permissions import can_manage_organisation
from casework.audit import log_access
from casework.models import AccessLog, StatusChange
from partners import outbound
from partners.models import CaseList, ListEvent, ListState, Share, WebhookDelivery, WebhookEndpoint
from partners.selectors import case_share_scopes, share_scope

SIGNATURE_HEADER = "Register-Signature"
# Why a delivery was given up without sending (shown in the delivery log, translated there; so are
# outbound's failures).
SHARE_ENDED = gettext_noop("not sent: the case is no longer shared")
LIST_CLOSED = gettext_noop("not sent: the list is closed")
DEACTIVATED = gettext_noop("webhook deactivated")
GIVEN_UP = frozenset({SHARE_ENDED, LIST_CLOSED, DEACTIVATED})
EVENT_TYPE = "case.status_changed"


def signing_secret(endpoint: WebhookEndpoint) -> str:
    key = settings.SECRET_KEY.encode()
    return "whsec_" + hmac.new(key, f"webhook:{endpoint.pk}:{endpoint.salt}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300, now: int | None = None) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or int(time.time())) - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def create_endpoint(*, organisation: Organisation, url: str, created_by: User | None) -> tuple[WebhookEndpoint, str]:
    """Register a URL; return the endpoint and its signing secret (shown once)."""
    if created_by is not None and not can_manage_organisation(created_by, organisation.pk):
        raise PermissionDenied(_("Only the organisation's admin may manage its webhooks."))
    schemes = ["https", "http"] if settings.WEBHOOK_ALLOW_HTTP else ["https"]
    try:
        URLValidator(schemes=schemes)(url)
    except ValidationError:
        raise ValidationError(
            {"url": [_("Give a full %(schemes)s URL.") % {"schemes": " or ".join(schemes)}]}
        ) from None
    try:
        outbound.check_url(url)
    except outbound.OutboundError:
        # One answer whether the name does not resolve or resolves to a refused address: which one it was
        # would tell what names the register's own network knows.
        raise ValidationError(
            {"url": [_("The URL's host must be a public internet address, and its name must resolve to one.")]}
        ) from None
    endpoint = WebhookEndpoint.objects.create(
        organisation=organisation, url=url, salt=secrets.token_hex(16), created_by=created_by
    )
    return endpoint, signing_secret(endpoint)


def deactivate_endpoint(*, endpoint: WebhookEndpoint, deactivated_by: User | None) -> int:
    """Stop sending events to an endpoint. Deliveries still pending are given up, not retried.

    Returns how many pending deliveries were given up.
    """
    if deactivated_by is not None and not can_manage_organisation(deactivated_by, endpoint.organisation_id):
        raise PermissionDenied(_("Only the organisation's admin may manage its webhooks."))
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
        given_up = WebhookDelivery.objects.filter(endpoint=endpoint, state=WebhookDelivery.State.PENDING).update(
            state=WebhookDelivery.State.FAILED, last_error=DEACTIVATED
        )
    endpoint.is_active = False
    return given_up


def event_payload(change: StatusChange, *, event_id: uuid.UUID, access: str) -> dict[str, Any]:
    """The event for a partner whose shares of the case give it ``access`` ("read" or "update", as in the API)."""
    from partners.api.serializers import PartnerCaseSerializer, PartnerStatusChangeSerializer

    return {
        "id": str(event_id),
        "type": EVENT_TYPE,
        "created_at": timezone.now().isoformat(),
        "data": {
            "case": {**PartnerCaseSerializer(change.case).data, "access": access},
            "change": PartnerStatusChangeSerializer(change).data,
        },
    }


def _with_access(payload: dict[str, Any], access: str) -> dict[str, Any]:
    data = payload["data"]
    return {**payload, "data": {**data, "case": {**data["case"], "access": access}}}


def plan_deliveries(change_id: int) -> list[int]:
    """Create one delivery per active endpoint of each partner the case is shared with (idempotent)."""
    change = (
        StatusChange.objects.select_related("case__institution", "case__organisation", "via")
        .filter(pk=change_id)
        .first()
    )
    if change is None:
        return []
    scopes = case_share_scopes(change.case_id)
    endpoints = WebhookEndpoint.objects.filter(organisation_id__in=list(scopes), is_active=True)
    created: list[int] = []
    with transaction.atomic():
        for endpoint in endpoints:
            event_id = uuid.uuid4()
            payload = event_payload(change, event_id=event_id, access=scopes[endpoint.organisation_id])
            delivery, was_created = WebhookDelivery.objects.get_or_create(
                endpoint=endpoint, status_change=change, defaults={"event_id": event_id, "payload": payload}
            )
            if was_created or delivery.state == WebhookDelivery.State.PENDING:
                created.append(delivery.pk)
    return created


def list_event_payload(event: ListEvent, *, event_id: uuid.UUID) -> dict[str, Any]:
    """A list event for its intermediary: the list, and for an answer the child's reference and the answer (no note)."""
    from partners.api.lists import list_data

    data: dict[str, Any] = {"list": list_data(event.case_list)}
    if event.answer is not None:
        item = event.answer.item
        data["item"] = {
            "reference": item.case.reference,
            "answer": event.answer.answer,
            "answered_on": event.answer.answered_on.isoformat(),
            "status": item.case.status,
        }
    return {"id": str(event_id), "type": event.kind, "created_at": event.created_at.isoformat(), "data": data}


def plan_list_deliveries(event_id: int) -> list[int]:
    """One delivery per active endpoint of the list's intermediary (idempotent); never anyone else's."""
    event = (
        ListEvent.objects.select_related("case_list__organisation", "case_list__intermediary", "answer__item__case")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return []
    endpoints = WebhookEndpoint.objects.filter(organisation_id=event.case_list.intermediary_id, is_active=True)
    created: list[int] = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery_event_id = uuid.uuid4()
            delivery, was_created = WebhookDelivery.objects.get_or_create(
                endpoint=endpoint,
                list_event=event,
                defaults={
                    "event_id": delivery_event_id,
                    "payload": list_event_payload(event, event_id=delivery_event_id),
                },
            )
            if was_created or delivery.state == WebhookDelivery.State.PENDING:
                created.append(delivery.pk)
    return created


class DeliveryFailed(Exception):
    pass


def _list_event_refusal(delivery: WebhookDelivery) -> str | None:
    """Why a list event is not sent now: the webhook deactivated, or (but for the closing) the list closed."""
    if not delivery.endpoint.is_active:
        return DEACTIVATED
    assert delivery.list_event is not None
    event = delivery.list_event
    state = CaseList.objects.filter(pk=event.case_list_id).values_list("state", flat=True).first()
    if event.kind != ListEvent.Kind.CLOSED and state != ListState.SENT:
        return LIST_CLOSED
    if event.answer is not None:
        # An answer names a child: only while the case is still shared with the intermediary.
        shared = Share.objects.active().filter(
            case_id=event.answer.item.case_id, partner_id=delivery.endpoint.organisation_id
        )
        if not shared.exists():
            return SHARE_ENDED
    return None


def attempt_delivery(delivery_id: int, *, final: bool) -> bool:
    """Send one delivery once. Returns True when delivered; raises DeliveryFailed to be retried."""
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "status_change", "list_event__answer__item")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.state == WebhookDelivery.State.DELIVERED:
        return True
    if delivery.state == WebhookDelivery.State.FAILED and delivery.last_error in GIVEN_UP:
        return False
    organisation_id = delivery.endpoint.organisation_id
    if delivery.status_change is not None:
        change_case_id: int = delivery.status_change.case_id
        case_id: int | None = change_case_id
        # At sending time, not only when planned: a share revoked (or a webhook deactivated) since then
        # stops the event, and the case never reaches the partner. The access the event states is the
        # partner's now, as the API would say it.
        access = share_scope(organisation_id, change_case_id) if delivery.endpoint.is_active else None
        refusal = None if access is not None else (SHARE_ENDED if delivery.endpoint.is_active else DEACTIVATED)
    else:
        assert delivery.list_event is not None
        answer = delivery.list_event.answer
        case_id = answer.item.case_id if answer is not None else None
        access, refusal = None, _list_event_refusal(delivery)
    if refusal is not None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.FAILED, last_error=refusal, last_attempt_at=timezone.now()
        )
        return False
    payload = _with_access(delivery.payload, access) if access is not None else delivery.payload
    if payload != delivery.payload:
        # The record keeps what is sent.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=payload)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "repatriation-register-webhooks/1",
        SIGNATURE_HEADER: sign(signing_secret(delivery.endpoint), body, timestamp),
        "Register-Event-Id": str(delivery.event_id),
    }
    status: int | None = None
    error = ""
    try:
        # The address is checked again now (a name can change what it resolves to) and the request goes there;
        # a redirect comes back as its status, a failed delivery.
        status = outbound.post(
            delivery.endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS
        )
    except outbound.OutboundError as failure:
        error = failure.failure
    delivered = status is not None and 200 <= status < 300
    now = timezone.now()
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=delivery.attempts + 1,
            last_status_code=status,
            last_error="" if delivered else error or f"HTTP {status}",
            last_attempt_at=now,
            delivered_at=now if delivered else None,
            state=WebhookDelivery.State.DELIVERED
            if delivered
            else (WebhookDelivery.State.FAILED if final else WebhookDelivery.State.PENDING),
        )
        if delivered and case_id is not None:
            # The receiving organisation has read the case, as through the API: the access log says so.
            log_access(
                action=AccessLog.Action.VIEW,
                door=AccessLog.Door.WEBHOOK,
                organisation_id=organisation_id,
                case_ids=[case_id],
            )
    if not delivered:
        raise DeliveryFailed(error or f"HTTP {status}")
    return True
