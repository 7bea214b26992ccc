"""The list endpoints for an intermediary's token: its own open lists only, answers with Idempotency-Key."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import Organisation
from casework.models import AccessLog, Case, Status
from partners.lists import services
from partners.models import ListAnswer
from tests.api_helpers import auth, make_token
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.list_helpers import sent_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    ngo = OrganisationFactory(slug="ngo-lists", name="Lists NGO (synthetic)")
    supervisor = UserFactory(username="lists-sup", organisation=ngo, role="supervisor")
    qatar = Organisation.objects.get(slug="qatar")
    vatican = Organisation.objects.get(slug="vatican")
    cases = [CaseFactory(organisation=ngo, reported_on=dt.date(2023, 1, 10)) for _n in range(5)]
    open_list = sent_list(ngo, qatar, cases[:3], by=supervisor)
    closed = sent_list(ngo, qatar, cases[3:4], by=supervisor)
    services.close_list(case_list=closed, by=supervisor)
    draft = services.create_list(organisation=ngo, intermediary=qatar, created_by=supervisor, cases=cases[4:])
    to_vatican = sent_list(ngo, vatican, cases[4:], by=supervisor)
    return {
        "cases": cases,
        "open": open_list,
        "closed": closed,
        "draft": draft,
        "vatican": to_vatican,
        "qatar": make_token(qatar, "update")[1],
        "qatar_read": make_token(qatar, "read")[1],
        "vatican_token": make_token(vatican, "update")[1],
        "owner": make_token(ngo, "update")[1],
    }


def post_answer(token, list_id, reference, body, key=None):
    return APIClient().post(
        f"/api/v1/lists/{list_id}/items/{reference}/answers/",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()),
        **auth(token),
    )


def test_it_lists_only_the_open_lists_sent_to_the_tokens_organisation(world):
    response = APIClient().get("/api/v1/lists/", **auth(world["qatar"]))
    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [world["open"].pk]
    assert response.json()[0]["organisation"] == "ngo-lists"
    for token in ("owner", "vatican_token"):
        ids = [row["id"] for row in APIClient().get("/api/v1/lists/", **auth(world[token])).json()]
        assert world["open"].pk not in ids


@pytest.mark.parametrize("which", ["closed", "draft", "vatican"])
def test_it_answers_404_for_a_closed_a_draft_or_another_intermediarys_list(world, which):
    target = world[which]
    case = world["cases"][3 if which == "closed" else 4]
    assert APIClient().get(f"/api/v1/lists/{target.pk}/", **auth(world["qatar"])).status_code == 404
    response = post_answer(
        world["qatar"], target.pk, case.reference, {"answer": "located", "answered_on": "2024-04-01"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["status"] == 404
    assert not ListAnswer.objects.exists()


def test_it_pages_the_items_with_their_latest_answer_and_logs_each_read(world):
    cases = sorted(world["cases"][:3], key=lambda case: case.reference)
    services.record_answer(
        case_list=world["open"],
        case=cases[1],
        answer="received",
        answered_on=dt.date(2024, 3, 5),
        answerer=services.Answerer(command=True),
    )
    client = APIClient()
    first = client.get(f"/api/v1/lists/{world['open'].pk}/?page_size=2", **auth(world["qatar"]))
    assert first.status_code == 200
    page = first.json()["items"]
    assert [row["reference"] for row in page["results"]] == [case.reference for case in cases[:2]]
    assert page["results"][1]["latest_answer"] == "received"
    assert "notes" not in page["results"][0]["case"]
    second = client.get(page["next"], **auth(world["qatar"])).json()["items"]
    assert [row["reference"] for row in second["results"]] == [cases[2].reference]
    assert second["next"] is None
    logged = AccessLog.objects.filter(door=AccessLog.Door.API, action=AccessLog.Action.LIST)
    assert sorted(logged.values_list("case_id", flat=True)) == sorted(case.pk for case in cases)
    answered = client.get(f"/api/v1/lists/{world['open'].pk}/?answer=received", **auth(world["qatar"])).json()
    assert [row["reference"] for row in answered["items"]["results"]] == [cases[1].reference]
    none = client.get(f"/api/v1/lists/{world['open'].pk}/?answer=none", **auth(world["qatar"])).json()
    assert len(none["items"]["results"]) == 2


@pytest.mark.parametrize(
    "query", ["cursor=%%%", "cursor=bm90IGEgcmVmZXJlbmNl", "page_size=0", "page_size=x", "answer=maybe"]
)
def test_it_refuses_a_bad_query_with_400(world, query):
    response = APIClient().get(f"/api/v1/lists/{world['open'].pk}/?{query}", **auth(world["qatar"]))
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400


def test_it_records_an_answer_that_moves_the_case_and_replays_a_retry(world):
    case = world["cases"][0]
    body = {"answer": "returned", "answered_on": "2024-06-01", "note": ""}
    key = str(uuid.uuid4())
    response = post_answer(world["qatar"], world["open"].pk, case.reference.lower(), body, key=key)
    assert response.status_code == 201, response.json()
    assert response.json()["answer"]["status_change"] == "repatriated"
    assert response.json()["item"]["latest_answer"] == "returned"
    case.refresh_from_db()
    assert case.status == Status.REPATRIATED
    again = post_answer(world["qatar"], world["open"].pk, case.reference.lower(), body, key=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert ListAnswer.objects.count() == 1
    reused = post_answer(
        world["qatar"], world["open"].pk, case.reference.lower(), {**body, "answer": "refused"}, key=key
    )
    assert reused.status_code == 422
    assert Case.objects.get(pk=case.pk).version == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"answer": "maybe", "answered_on": "2024-04-01"}, 400),
        ({"answer": "located", "answered_on": "yesterday"}, 400),
        ({"answer": "located"}, 400),
        ({"answer": "located", "answered_on": "2024-01-01"}, 422),  # before the list was sent
        ({"answer": "located", "answered_on": "2024-04-01", "note": "call +380 67 123 4567"}, 422),
        (["located"], 400),
    ],
)
def test_it_refuses_a_bad_answer_and_writes_nothing(world, body, status):
    response = post_answer(world["qatar"], world["open"].pk, world["cases"][0].reference, body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["status"] == status
    assert not ListAnswer.objects.exists()


def test_it_needs_an_idempotency_key_and_an_update_token(world):
    case = world["cases"][0]
    url = f"/api/v1/lists/{world['open'].pk}/items/{case.reference}/answers/"
    body = {"answer": "located", "answered_on": "2024-04-01"}
    assert APIClient().post(url, body, format="json", **auth(world["qatar"])).status_code == 428
    assert post_answer(world["qatar_read"], world["open"].pk, case.reference, body).status_code == 403
    assert post_answer(world["qatar"], world["open"].pk, "not-a-reference", body).status_code == 404
    assert post_answer(world["qatar"], world["open"].pk, world["cases"][4].reference, body).status_code == 404
    huge = 10**30
    assert APIClient().get(f"/api/v1/lists/{huge}/", **auth(world["qatar"])).status_code == 404
    assert not ListAnswer.objects.exists()


def test_a_case_shared_for_answers_is_read_only_through_the_case_endpoints(world):
    case = world["cases"][0]
    client = APIClient()
    detail = client.get(f"/api/v1/cases/{case.reference}/", **auth(world["qatar"]))
    assert detail.status_code == 200 and detail.json()["access"] == "answer"
    response = client.post(
        f"/api/v1/cases/{case.reference}/status-changes/",
        {"status": "located", "occurred_on": "2024-04-01"},
        format="json",
        HTTP_IF_MATCH=detail.headers["ETag"],
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **auth(world["qatar"]),
    )
    assert response.status_code == 403
    # Closed, the list no longer shows its cases to the intermediary.
    assert client.get(f"/api/v1/cases/{world['cases'][3].reference}/", **auth(world["qatar"])).status_code == 404


def test_a_case_whose_share_was_revoked_is_gone_from_the_open_list_for_the_intermediary(world):
    """The sending organisation revokes one listed case's share while the list stays open: the intermediary
    no longer sees that item (not listed, not counted, not filtered in) and cannot answer it."""
    from partners.models import Share
    from partners.services import revoke_shares

    kept, revoked = world["cases"][0], world["cases"][1]
    share = Share.objects.active().get(case=revoked, partner__slug="qatar")
    assert revoke_shares(owner=revoked.organisation, shares=[share], revoked_by=None) == 1
    for query in ("", "?answer=none"):
        body = APIClient().get(f"/api/v1/lists/{world['open'].pk}/{query}", **auth(world["qatar"])).json()
        references = [row["reference"] for row in body["items"]["results"]]
        assert revoked.reference not in references
        assert kept.reference in references and len(references) == 2
    response = post_answer(
        world["qatar"], world["open"].pk, revoked.reference, {"answer": "returned", "answered_on": "2024-04-01"}
    )
    assert response.status_code == 404
    assert not ListAnswer.objects.filter(item__case=revoked).exists()
    revoked.refresh_from_db()
    assert revoked.status == Status.REPORTED
    assert not AccessLog.objects.filter(case=revoked, token__isnull=False).exists()
    # The sending organisation still records answers about it on the web (its own case).
    made = services.record_answer(
        case_list=world["open"],
        case=revoked,
        answer="received",
        answered_on=dt.date(2024, 4, 1),
        answerer=services.Answerer(command=True),
    )
    assert made.answer == "received"


def test_the_service_refuses_a_tokens_answer_on_a_revoked_case_under_the_lock(world):
    """The view's check and the service's check are separate: the service alone refuses it too."""
    from accounts.models import ApiToken
    from partners.models import Share

    revoked = world["cases"][2]
    Share.objects.filter(case=revoked, partner__slug="qatar").update(revoked_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    token = ApiToken.objects.filter(organisation__slug="qatar", scope="update").first()
    with pytest.raises(services.ListNotFound):
        services.record_answer(
            case_list=world["open"],
            case=revoked,
            answer="located",
            answered_on=dt.date(2024, 4, 1),
            answerer=services.Answerer(token=token),
        )
    assert not ListAnswer.objects.filter(item__case=revoked).exists()
