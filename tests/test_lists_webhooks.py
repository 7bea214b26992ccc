"""List events for the intermediary's webhooks (sent, answer recorded, closed), through the outbox; and the
sending organisation's marker of new answers."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from accounts.models import Organisation
from casework.models import AccessLog
from partners import webhooks
from partners.lists import services
from partners.models import CaseList, ListEvent, WebhookDelivery
from partners.tasks import announce_status_changes
from tests.api_helpers import make_token
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.list_helpers import sent_list
from tests.webhook_helpers import Receiver


@pytest.fixture(autouse=True)
def _tasks_in_process(tasks_in_process):
    """With REDIS_URL set (CI) tasks would go to the broker; these tests follow them in-process."""


@pytest.fixture
def world(db, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    ngo = OrganisationFactory(slug="ngo-hooks")
    supervisor = UserFactory(username="hooks-sup", organisation=ngo, role="supervisor")
    cases = [CaseFactory(organisation=ngo, reported_on=dt.date(2023, 1, 10), notes="internal only") for _ in range(2)]
    return {
        "ngo": ngo,
        "supervisor": supervisor,
        "cases": cases,
        "qatar": Organisation.objects.get(slug="qatar"),
        "vatican": Organisation.objects.get(slug="vatican"),
    }


def events(receiver) -> list[dict]:
    return [json.loads(body) for _headers, body in receiver.received]


def test_the_intermediary_receives_its_lists_events_and_nobody_else(world, django_capture_on_commit_callbacks):
    with Receiver([]) as qatar_hook, Receiver([]) as vatican_hook, Receiver([]) as ngo_hook:
        _endpoint, secret = webhooks.create_endpoint(organisation=world["qatar"], url=qatar_hook.url, created_by=None)
        webhooks.create_endpoint(organisation=world["vatican"], url=vatican_hook.url, created_by=None)
        webhooks.create_endpoint(organisation=world["ngo"], url=ngo_hook.url, created_by=None)
        with django_capture_on_commit_callbacks(execute=True):
            made = sent_list(world["ngo"], world["qatar"], world["cases"], by=world["supervisor"])
        with django_capture_on_commit_callbacks(execute=True):
            services.record_answer(
                case_list=made,
                case=world["cases"][0],
                answer="received",
                answered_on=dt.date(2024, 3, 5),
                note="internal note",
                answerer=services.Answerer(user=world["supervisor"]),
            )
        with django_capture_on_commit_callbacks(execute=True):
            services.close_list(case_list=made, by=world["supervisor"])
        received = events(qatar_hook)
        assert [event["type"] for event in received] == ["list.sent", "list.answer_recorded", "list.closed"]
        headers, body = qatar_hook.received[1]
        assert webhooks.verify(secret, body, headers[webhooks.SIGNATURE_HEADER])
        answer = received[1]["data"]
        assert answer["list"]["id"] == made.pk
        assert answer["item"] == {
            "reference": world["cases"][0].reference,
            "answer": "received",
            "answered_on": "2024-03-05",
            "status": "reported",
        }
        assert "internal" not in body.decode()
        assert not vatican_hook.received and not ngo_hook.received
    assert AccessLog.objects.filter(
        door=AccessLog.Door.WEBHOOK, organisation=world["qatar"], case=world["cases"][0]
    ).exists()
    assert not ListEvent.objects.filter(processed_at__isnull=True).exists()


def test_an_event_of_a_list_closed_before_sending_is_given_up(world):
    with Receiver([]) as hook:
        webhooks.create_endpoint(organisation=world["qatar"], url=hook.url, created_by=None)
        made = sent_list(world["ngo"], world["qatar"], world["cases"], by=world["supervisor"])
        # The worker was down: the sent event waits in the outbox while the list is closed.
        ListEvent.objects.filter(kind=ListEvent.Kind.SENT).update(processed_at=None)
        services.close_list(case_list=made, by=world["supervisor"])
        WebhookDelivery.objects.all().delete()
        ListEvent.objects.update(processed_at=None)
        announce_status_changes()
        assert [event["type"] for event in events(hook)] == ["list.closed"]
    sent = WebhookDelivery.objects.get(list_event__kind=ListEvent.Kind.SENT)
    assert (sent.state, sent.last_error) == ("failed", webhooks.LIST_CLOSED)


def test_an_answer_through_the_api_marks_the_list_for_the_sending_organisation(world, client):
    made = sent_list(world["ngo"], world["qatar"], world["cases"], by=world["supervisor"])
    token, _plain = make_token(world["qatar"], "update")
    services.record_answer(
        case_list=made,
        case=world["cases"][1],
        answer="located",
        answered_on=dt.date(2024, 3, 5),
        answerer=services.Answerer(token=token),
    )
    client.force_login(world["supervisor"])
    index = client.get("/lists/")
    assert "new answers" in index.text
    detail = client.get(f"/lists/{made.pk}/")
    assert detail.context["unread"]
    assert not CaseList.objects.get(pk=made.pk).has_unread_answers
    assert "new answers" not in client.get("/lists/").text


def test_an_answer_about_a_case_whose_share_was_revoked_is_not_sent_to_the_intermediary(world):
    from partners.models import Share

    with Receiver([]) as hook:
        webhooks.create_endpoint(organisation=world["qatar"], url=hook.url, created_by=None)
        made = sent_list(world["ngo"], world["qatar"], world["cases"], by=world["supervisor"])
        Share.objects.filter(case=world["cases"][1], partner=world["qatar"]).update(
            revoked_at=dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
        )
        for case in world["cases"]:
            services.record_answer(
                case_list=made,
                case=case,
                answer="received",
                answered_on=dt.date(2024, 3, 5),
                answerer=services.Answerer(user=world["supervisor"]),
            )
        announce_status_changes()
        answered = [event["data"]["item"]["reference"] for event in events(hook) if "item" in event["data"]]
    assert answered == [world["cases"][0].reference]
    given_up = WebhookDelivery.objects.get(list_event__answer__item__case=world["cases"][1])
    assert (given_up.state, given_up.last_error) == ("failed", webhooks.SHARE_ENDED)
