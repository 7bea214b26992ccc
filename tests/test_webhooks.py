"""Signed webhook events, delivered to a local receiving server, with retries."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from celery.exceptions import Retry

from accounts.models import Organisation
from casework import services as case_services
from casework.models import AccessLog, StatusEvent
from partners import webhooks
from partners.models import Share, WebhookDelivery, WebhookEndpoint
from partners.tasks import announce_status_changes, deliver_webhook, sweep_webhooks
from tests.api_helpers import share
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.webhook_helpers import PUBLIC_V4, Receiver, fake_dns


@pytest.fixture(autouse=True)
def _tasks_in_process(tasks_in_process):
    """With REDIS_URL set (CI) tasks would go to the broker; these tests follow them in-process."""


@pytest.fixture
def setup(db, settings):
    # The receivers listen on this machine: http and loopback, as in local development.
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    owner = OrganisationFactory(slug="ngo-owner")
    partner = Organisation.objects.get(slug="qatar")
    supervisor = UserFactory(username="owner-supervisor", organisation=owner, role="supervisor")
    case = CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10), notes="internal only")
    share(case, partner, "read")
    return case, partner, supervisor


def move(case, user, to="located"):
    return case_services.change_status(
        case=case,
        actor=case_services.Actor.for_user(user),
        to_status=to,
        occurred_on=dt.date(2023, 2, 1),
        expected_version=case.version,
    )


def test_it_sends_a_signed_event_with_only_allowed_fields(setup, django_capture_on_commit_callbacks):
    case, partner, supervisor = setup
    with Receiver([200]) as receiver:
        endpoint, secret = webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        with django_capture_on_commit_callbacks(execute=True):
            move(case, supervisor)
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert webhooks.verify(secret, body, headers[webhooks.SIGNATURE_HEADER])
    assert not webhooks.verify(secret, body + b" ", headers[webhooks.SIGNATURE_HEADER])
    assert not webhooks.verify("whsec_other", body, headers[webhooks.SIGNATURE_HEADER])
    event = json.loads(body)
    assert event["type"] == "case.status_changed"
    assert event["data"]["case"]["reference"] == case.reference
    assert event["data"]["change"]["to_status"] == "located"
    assert "internal only" not in body.decode() and "owner-supervisor" not in body.decode()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert headers["Register-Event-Id"] == str(delivery.event_id)


def test_it_refuses_an_old_timestamp():
    body = b"{}"
    header = webhooks.sign("whsec_x", body, 1_000_000)
    assert webhooks.verify("whsec_x", body, header, now=1_000_100)
    assert not webhooks.verify("whsec_x", body, header, now=1_000_000 + 3600)
    assert not webhooks.verify("whsec_x", body, "garbage")


def test_it_retries_with_backoff_until_delivered(setup, monkeypatch):
    case, partner, supervisor = setup
    countdowns: list[int] = []

    def record_retry(exc=None, countdown=None, **kwargs):
        countdowns.append(countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(deliver_webhook, "retry", record_retry)
    with Receiver([500, 503, 200]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        [delivery_id] = webhooks.plan_deliveries(move(case, supervisor).pk)
        for attempt in range(3):
            deliver_webhook.push_request(retries=attempt, is_eager=False)
            try:
                deliver_webhook.run(delivery_id)
            except Retry:
                assert attempt < 2
            finally:
                deliver_webhook.pop_request()
            state = WebhookDelivery.objects.get(pk=delivery_id).state
            assert state == ("delivered" if attempt == 2 else "pending")
    assert countdowns == [10, 20]  # exponential backoff
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.attempts, delivery.last_status_code) == (3, 200)
    # The same event (same id and body) is sent on every attempt.
    assert len(receiver.received) == 3
    assert len({body for _, body in receiver.received}) == 1


def test_it_marks_a_delivery_failed_after_the_last_retry(setup):
    case, partner, supervisor = setup
    with Receiver([500]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        change = move(case, supervisor)
        [delivery_id] = webhooks.plan_deliveries(change.pk)
        with pytest.raises(webhooks.DeliveryFailed):
            webhooks.attempt_delivery(delivery_id, final=True)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.state, delivery.last_error) == ("failed", "HTTP 500")


def test_it_sends_nothing_for_unshared_cases_or_other_organisations(setup, django_capture_on_commit_callbacks):
    case, partner, supervisor = setup
    stranger = Organisation.objects.get(slug="vatican")
    unshared = CaseFactory(organisation=case.organisation)
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=stranger, url=receiver.url, created_by=None)
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        with django_capture_on_commit_callbacks(execute=True):
            move(unshared, supervisor)
            move(case, supervisor)
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0][1])["data"]["case"]["reference"] == case.reference


def test_it_catches_up_on_missed_events(setup):
    case, partner, supervisor = setup
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        move(case, supervisor)  # on_commit never runs inside the test transaction: as if the broker was down
        assert not WebhookDelivery.objects.exists()
        assert StatusEvent.objects.get().processed_at is None  # the outbox holds the change
        announce_status_changes.apply()  # the periodic sweep
        assert WebhookDelivery.objects.get().state == "delivered"
        assert StatusEvent.objects.get().processed_at is not None
        announce_status_changes.apply()
        sweep_webhooks.apply()
    assert len(receiver.received) == 1


def test_it_only_accepts_https_urls_in_production(settings, db, monkeypatch):
    settings.WEBHOOK_ALLOW_HTTP = False
    fake_dns(monkeypatch, {"partner.example": [PUBLIC_V4]})
    partner = Organisation.objects.get(slug="qatar")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        webhooks.create_endpoint(organisation=partner, url="http://partner.example/hook", created_by=None)
    endpoint, secret = webhooks.create_endpoint(
        organisation=partner, url="https://partner.example/hook", created_by=None
    )
    assert secret.startswith("whsec_") and secret not in str(endpoint.__dict__)


def test_an_endpoint_down_during_a_change_gets_the_event_once_when_it_is_back(setup, monkeypatch):
    """The outbox and the sweeps: a change made while the endpoint is down arrives once, after it is back."""
    case, partner, supervisor = setup
    queued: list[int] = []
    with Receiver([503]) as down:
        endpoint, _secret = webhooks.create_endpoint(organisation=partner, url=down.url, created_by=None)
        move(case, supervisor)  # the nudge after commit does not run here: only the outbox has the change
        with monkeypatch.context() as patched:
            patched.setattr(deliver_webhook, "delay", queued.append)
            announce_status_changes.apply()  # beat claims it and queues its delivery
        [delivery_id] = queued
        with pytest.raises(webhooks.DeliveryFailed):
            webhooks.attempt_delivery(delivery_id, final=False)  # a worker's first try: 503, to be retried
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.state, delivery.last_error) == ("pending", "HTTP 503")
    with Receiver([]) as back:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=back.url)  # the same endpoint, answering again
        # The retry's task was lost (a worker died): the sweep queues the delivery again.
        WebhookDelivery.objects.filter(pk=delivery_id).update(last_attempt_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        sweep_webhooks.apply()
        sweep_webhooks.apply()
        announce_status_changes.apply()
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 2
    assert len(back.received) == 1
    assert json.loads(back.received[0][1])["data"]["case"]["reference"] == case.reference


def test_a_share_revoked_before_sending_stops_the_event(setup):
    case, partner, supervisor = setup
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        move(case, supervisor)
        Share.objects.filter(case=case).update(revoked_at=dt.datetime.now(dt.UTC))
        announce_status_changes.apply()
    assert receiver.received == []
    assert not WebhookDelivery.objects.filter(state="delivered").exists()


def test_a_share_revoked_between_planning_and_sending_stops_the_delivery(setup, monkeypatch):
    case, partner, supervisor = setup
    queued: list[int] = []
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        move(case, supervisor)
        with monkeypatch.context() as patched:
            patched.setattr(deliver_webhook, "delay", queued.append)
            announce_status_changes.apply()
        Share.objects.filter(case=case).update(revoked_at=dt.datetime.now(dt.UTC))
        deliver_webhook.apply(args=queued)
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.last_error) == ("failed", webhooks.SHARE_ENDED)


# --- what the event says of the partner's access, and the access log -----------------------------


def test_the_event_states_the_partners_access_never_owner(setup, django_capture_on_commit_callbacks):
    case, partner, supervisor = setup
    other_partner = Organisation.objects.get(slug="vatican")
    share(case, other_partner, "update")
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url + "/read", created_by=None)
        webhooks.create_endpoint(organisation=other_partner, url=receiver.url + "/update", created_by=None)
        with django_capture_on_commit_callbacks(execute=True):
            move(case, supervisor)
    sent = {
        path: json.loads(body)["data"]["case"]["access"]
        for path, (_headers, body) in zip(receiver.paths, receiver.received, strict=True)
    }
    assert sent == {"/hook/read": "read", "/hook/update": "update"}


def test_the_event_states_the_access_of_the_share_live_when_it_is_sent(setup):
    """Planned while the partner could read; sent after the share became an update share."""
    case, partner, supervisor = setup
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        [delivery_id] = webhooks.plan_deliveries(move(case, supervisor).pk)
        assert WebhookDelivery.objects.get(pk=delivery_id).payload["data"]["case"]["access"] == "read"
        share(case, partner, "update")
        webhooks.attempt_delivery(delivery_id, final=True)
    [(_headers, body)] = receiver.received
    assert json.loads(body)["data"]["case"]["access"] == "update"
    assert WebhookDelivery.objects.get(pk=delivery_id).payload["data"]["case"]["access"] == "update"


def test_a_delivered_event_is_logged_as_read_by_the_receiving_organisation(setup):
    case, partner, supervisor = setup
    with Receiver([500, 200]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        [delivery_id] = webhooks.plan_deliveries(move(case, supervisor).pk)
        before = set(AccessLog.objects.values_list("pk", flat=True))
        with pytest.raises(webhooks.DeliveryFailed):
            webhooks.attempt_delivery(delivery_id, final=False)
        assert not AccessLog.objects.exclude(pk__in=before).exists()  # the 500: not delivered
        webhooks.attempt_delivery(delivery_id, final=False)
        webhooks.attempt_delivery(delivery_id, final=False)  # already delivered: nothing sent, nothing logged
    assert len(receiver.received) == 2
    [entry] = AccessLog.objects.exclude(pk__in=before)
    assert (entry.case_id, entry.organisation_id, entry.action, entry.door) == (case.pk, partner.pk, "view", "webhook")
    assert (entry.user_id, entry.token_id, entry.ip_address) == (None, None, None)
    assert entry.get_door_display() == "Webhook"


def test_an_event_not_sent_is_not_logged(setup):
    case, partner, supervisor = setup
    with Receiver([]) as receiver:
        webhooks.create_endpoint(organisation=partner, url=receiver.url, created_by=None)
        [delivery_id] = webhooks.plan_deliveries(move(case, supervisor).pk)
        Share.objects.filter(case=case).update(revoked_at=dt.datetime.now(dt.UTC))
        before = AccessLog.objects.count()
        assert webhooks.attempt_delivery(delivery_id, final=False) is False
    assert receiver.received == []
    assert AccessLog.objects.count() == before
