"""Reporting progress through the API: scopes, If-Match, Idempotency-Key, the rules."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from accounts.models import Organisation
from casework.models import AccessLog, StatusChange
from tests.api_helpers import case_shared_for_update, make_token, share
from tests.factories import CaseFactory

TODAY = dt.date.today().isoformat()


@pytest.fixture
def world(db):
    return case_shared_for_update()


def post(client, case, body, *, version=1, key="key-1"):
    headers = {}
    if version is not None:
        headers["HTTP_IF_MATCH"] = f'"{version}"'
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(f"/api/v1/cases/{case.reference}/status-changes/", body, format="json", **headers)


def test_it_records_a_return_via_an_intermediary(world):
    case, client = world
    response = post(client, case, {"status": "repatriated", "occurred_on": TODAY, "via": "qatar", "note": "Home."})
    assert response.status_code == 201, response.json()
    assert response["ETag"] == '"2"'
    body = response.json()
    assert body["change"]["to_status"] == "repatriated" and body["change"]["via"] == "qatar"
    change = StatusChange.objects.get(case=case)
    assert change.recorded_by is None and change.recorded_by_token.organisation.slug == "qatar"
    assert change.recorded_via.startswith("API token ")
    assert AccessLog.objects.filter(case=case, action="status_change", door="api").count() == 1


def test_it_replays_a_retry_and_refuses_a_reused_key(world):
    case, client = world
    body = {"status": "located", "occurred_on": TODAY}
    first = post(client, case, body)
    again = post(client, case, body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert StatusChange.objects.filter(case=case).count() == 1
    other = post(client, case, {**body, "status": "repatriated"})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_it_requires_if_match_and_refuses_a_stale_one(world):
    case, client = world
    missing = post(client, case, {"status": "located", "occurred_on": TODAY}, version=None)
    assert missing.status_code == 428 and "If-Match" in missing.json()["error"]["fields"]
    garbage = client.post(
        f"/api/v1/cases/{case.reference}/status-changes/",
        {"status": "located", "occurred_on": TODAY},
        format="json",
        HTTP_IF_MATCH="yesterday",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert garbage.status_code == 400
    assert post(client, case, {"status": "located", "occurred_on": TODAY}, key="a").status_code == 201
    stale = post(client, case, {"status": "repatriated", "occurred_on": TODAY}, version=1, key="b")
    assert stale.status_code == 412
    assert stale["ETag"] == '"2"'
    assert "Reported → Located" in stale.json()["error"]["message"]
    assert StatusChange.objects.filter(case=case).count() == 1
    # The refused request stored nothing: the key can be used again with the right version.
    assert post(client, case, {"status": "repatriated", "occurred_on": TODAY}, version=2, key="b").status_code == 201


def test_it_requires_an_idempotency_key(world):
    case, client = world
    response = post(client, case, {"status": "located", "occurred_on": TODAY}, key=None)
    assert response.status_code == 428
    assert "Idempotency-Key" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "withdrawn", "occurred_on": TODAY}, "status"),
        ({"status": "verified", "occurred_on": TODAY}, "status"),
        ({"status": "located", "occurred_on": "soon"}, "occurred_on"),
        ({"status": "located"}, "occurred_on"),
        ({"status": "repatriated", "occurred_on": TODAY, "via": "ngo-owner"}, "via"),
        ({"status": "located", "occurred_on": TODAY, "note": 5 * "x" + " +380 67 123 4567"}, "note"),
        ({"status": "located", "occurred_on": "2022-01-01"}, "occurred_on"),
        ({"status": "located", "occurred_on": "2999-01-01"}, "occurred_on"),
        ({"status": "located", "occurred_on": TODAY, "via": "qatar"}, "via"),
    ],
)
def test_it_refuses_bad_bodies_with_the_field_at_fault(world, body, field):
    case, client = world
    response = post(client, case, body)
    assert response.status_code in {400, 422}, response.json()
    assert field in response.json()["error"]["fields"]
    assert not StatusChange.objects.filter(case=case).exists()


def test_it_refuses_backward_moves_from_partners(world):
    case, client = world
    assert post(client, case, {"status": "repatriated", "occurred_on": TODAY}, key="1").status_code == 201
    back = post(client, case, {"status": "located", "occurred_on": TODAY}, version=2, key="2")
    assert back.status_code == 403
    assert "forward" in back.json()["error"]["message"]


def test_it_refuses_a_read_share_and_a_read_token(world):
    case, client = world
    partner = Organisation.objects.get(slug="qatar")
    read_case = CaseFactory(organisation=case.organisation)
    share(read_case, partner, "read")
    assert post(client, read_case, {"status": "located", "occurred_on": TODAY}).status_code == 403
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner, 'read')[1]}")
    response = post(reader, case, {"status": "located", "occurred_on": TODAY})
    assert response.status_code == 403 and response.json()["error"]["code"] == "token_scope"
    assert not StatusChange.objects.exists()


def test_it_refuses_non_json_bodies(world):
    case, client = world
    response = client.post(
        f"/api/v1/cases/{case.reference}/status-changes/",
        "status=located",
        content_type="application/x-www-form-urlencoded",
        HTTP_IF_MATCH='"1"',
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert response.status_code == 415
    array = post(client, case, ["located"])
    assert array.status_code == 400
