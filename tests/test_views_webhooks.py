"""The organisation's webhooks: registered (secret shown once), deactivated, their delivery log; org admin only."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import AccessLog, StatusChange
from partners import webhooks
from partners.models import WebhookDelivery, WebhookEndpoint
from tests.factories import CaseFactory
from tests.webhook_helpers import PUBLIC_V4, fake_dns

URL = "/organisation/webhooks/"


@pytest.fixture(autouse=True)
def _partner_names_resolve(monkeypatch):
    # The partners' host names resolve to a public address, as a real partner's do (nothing is sent here).
    fake_dns(monkeypatch, {"partner.example": [PUBLIC_V4], "other.example": [PUBLIC_V4]})


def page_queries(queries) -> list[str]:
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


def endpoint_of(organisation, url="https://partner.example/events") -> WebhookEndpoint:
    endpoint, _secret = webhooks.create_endpoint(organisation=organisation, url=url, created_by=None)
    return endpoint


def deliveries(endpoint: WebhookEndpoint, count: int, **fields) -> list[WebhookDelivery]:
    """Deliveries of status changes of synthetic cases (written directly: no event is sent)."""
    made = []
    for _ in range(count):
        case = CaseFactory()
        change = StatusChange.objects.create(
            case=case,
            from_status="reported",
            to_status="located",
            occurred_on=dt.date(2023, 2, 1),
            recorded_at=timezone.now(),
            version=2,
        )
        made.append(
            WebhookDelivery.objects.create(
                endpoint=endpoint, status_change=change, event_id=uuid.uuid4(), payload={}, **fields
            )
        )
    return made


@pytest.fixture
def signed_in(client, org_admin):
    client.force_login(org_admin)
    return client


def test_it_registers_a_url_and_shows_its_signing_secret_once(signed_in, org_admin, ngo_a):
    response = signed_in.post(URL, {"url": "https://partner.example/register-events"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.organisation, endpoint.created_by, endpoint.is_active) == (ngo_a, org_admin, True)
    match = re.search(r'id="new-secret" class="secret" value="([^"]+)"', response.text)
    assert match and match.group(1) == webhooks.signing_secret(endpoint)
    assert "Register-Signature: t=…,v1=…" in response.text
    assert "HMAC-SHA256" in response.text
    listing = signed_in.get(URL).text
    assert "https://partner.example/register-events" in listing
    assert webhooks.signing_secret(endpoint) not in listing


@pytest.mark.parametrize("url", ["ftp://partner.example/x", "not a url", "http://partner.example/plain", ""])
def test_it_refuses_a_url_that_is_not_https(signed_in, url):
    response = signed_in.post(URL, {"url": url})
    assert response.status_code == 400
    assert "The URL was not added" in response.text
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:5432/", "https://169.254.169.254/latest/meta-data/", "https://nowhere.example/hook"]
)
def test_it_refuses_a_url_that_does_not_reach_a_public_address(signed_in, url):
    response = signed_in.post(URL, {"url": url})
    assert response.status_code == 400
    assert "The URL was not added" in response.text
    assert "must be a public internet address" in response.text
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_names_a_failure_by_its_class(signed_in, ngo_a):
    endpoint = endpoint_of(ngo_a)
    deliveries(endpoint, 1, state="pending", attempts=1, last_error="connection refused")
    deliveries(endpoint, 1, state="failed", attempts=1, last_status_code=302, last_error="HTTP 302")
    text = signed_in.get(URL).text
    assert "connection refused" in text and "HTTP 302" in text


def test_it_deactivates_an_endpoint_and_gives_up_its_pending_deliveries(signed_in, ngo_a):
    endpoint = endpoint_of(ngo_a)
    [pending] = deliveries(endpoint, 1)
    [delivered] = deliveries(endpoint, 1, state="delivered", attempts=1, last_status_code=200)
    asked = signed_in.post(f"/organisation/webhooks/{endpoint.pk}/deactivate/")
    assert asked.status_code == 200 and "Deactivate this webhook?" in asked.text
    endpoint.refresh_from_db()
    assert endpoint.is_active  # nothing changes before the confirmation
    response = signed_in.post(f"/organisation/webhooks/{endpoint.pk}/deactivate/", {"confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == URL
    endpoint.refresh_from_db()
    pending.refresh_from_db()
    delivered.refresh_from_db()
    assert endpoint.is_active is False
    assert (pending.state, pending.last_error) == ("failed", "webhook deactivated")
    assert delivered.state == "delivered"
    text = signed_in.get(URL).text
    assert "No more events will be sent to https://partner.example/events." in text
    assert f"/organisation/webhooks/{endpoint.pk}/deactivate/" not in text


def test_it_answers_404_for_another_organisations_endpoint(signed_in, ngo_b):
    endpoint = endpoint_of(ngo_b)
    assert signed_in.post(f"/organisation/webhooks/{endpoint.pk}/deactivate/").status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_it_shows_the_delivery_log_of_the_organisation_only(signed_in, ngo_a, ngo_b):
    ours = endpoint_of(ngo_a)
    [failed] = deliveries(ours, 1, state="pending", attempts=3, last_status_code=503, last_error="HTTP 503")
    [theirs] = deliveries(endpoint_of(ngo_b, "https://other.example/hook"), 1)
    response = signed_in.get(URL)
    text = response.text
    assert str(failed.event_id) in text
    assert failed.status_change.case.reference in text
    assert "HTTP 503" in text and "Pending" in text
    assert str(theirs.event_id) not in text and "other.example" not in text
    assert "1 event" in text


def test_every_case_the_delivery_log_names_is_logged_as_read_by_the_organisation(signed_in, org_admin, ngo_a):
    endpoint = endpoint_of(ngo_a)
    shown = deliveries(endpoint, 3)
    assert signed_in.get(URL).status_code == 200
    rows = AccessLog.objects.filter(action=AccessLog.Action.LIST, door=AccessLog.Door.WEB)
    assert sorted(rows.values_list("case_id", flat=True)) == sorted(d.status_change.case_id for d in shown)
    assert set(rows.values_list("organisation_id", "user_id")) == {(ngo_a.pk, org_admin.pk)}


def test_it_paginates_the_delivery_log_with_a_constant_number_of_queries(signed_in, ngo_a):
    endpoint = endpoint_of(ngo_a)
    deliveries(endpoint, 1)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert signed_in.get(URL).status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    count()
    one, _ = count()
    deliveries(endpoint, 30)
    many, sql = count()
    # session, user, endpoints, count of deliveries, page of deliveries, the access-log rows of the cases named
    # (one insert, with the audit chain's head locked and moved on)
    assert many == one == 8, sql
    assert len(signed_in.get(URL, {"page": "2"}).context["page"].object_list) == 6
    assert "Page 1 of 2" in signed_in.get(URL).text


@pytest.mark.parametrize("role_fixture", ["caseworker", "supervisor", "analyst"])
def test_it_refuses_other_roles(client, request, role_fixture, ngo_a):
    endpoint = endpoint_of(ngo_a)
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"url": "https://partner.example/x"}).status_code == 403
    assert client.post(f"/organisation/webhooks/{endpoint.pk}/deactivate/").status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.is_active and WebhookEndpoint.objects.count() == 1


def test_it_refuses_deactivation_by_another_organisations_admin_in_the_service(ngo_a, ngo_b):
    from django.core.exceptions import PermissionDenied

    from tests.factories import UserFactory

    endpoint = endpoint_of(ngo_a)
    stranger = UserFactory(username="orgadmin-b", organisation=ngo_b, role="org_admin")
    with pytest.raises(PermissionDenied):
        webhooks.deactivate_endpoint(endpoint=endpoint, deactivated_by=stranger)
    endpoint.refresh_from_db()
    assert endpoint.is_active
