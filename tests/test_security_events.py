"""The record of sign-ins, failed sign-ins, lockouts, sign-outs and refusals (AuthEvent), and its read-only admin."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import AuthEvent, User
from tests.factories import CaseFactory
from tests.test_security_two_factor import PASSWORD, sign_in, signed_in_with_second_factor

ADDRESS = "203.0.113.30"


def kinds() -> list[str]:
    return list(AuthEvent.objects.order_by("at", "id").values_list("kind", flat=True))


def test_it_records_a_sign_in_and_a_sign_out_with_the_real_address(caseworker):
    client = Client(REMOTE_ADDR=ADDRESS, HTTP_X_FORWARDED_FOR="192.0.2.1")
    sign_in(client, "caseworker")
    client.post("/accounts/logout/")
    assert kinds() == ["sign_in", "sign_out"]
    for event in AuthEvent.objects.all():
        assert (event.user, event.username, event.organisation, event.ip_address) == (
            caseworker,
            "caseworker",
            caseworker.organisation,
            ADDRESS,
        )


def test_it_records_a_failed_sign_in_with_the_username_tried(caseworker):
    sign_in(Client(REMOTE_ADDR=ADDRESS), "caseworker", password="not-the-password")
    sign_in(Client(REMOTE_ADDR=ADDRESS), "nobody-by-this-name", password="not-the-password")
    known, unknown = AuthEvent.objects.order_by("id")
    assert (known.kind, known.user, known.organisation, known.ip_address) == (
        "sign_in_failed",
        caseworker,
        caseworker.organisation,
        ADDRESS,
    )
    assert (unknown.kind, unknown.user, unknown.username, unknown.organisation) == (
        "sign_in_failed",
        None,
        "nobody-by-this-name",
        None,
    )


def test_it_records_a_lockout(caseworker):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(REMOTE_ADDR=ADDRESS), "caseworker", password="not-the-password")
    [event] = AuthEvent.objects.filter(kind=AuthEvent.Kind.LOCKED_OUT)
    assert (event.user, event.ip_address, event.path) == (caseworker, ADDRESS, "/accounts/login/")


def test_it_records_a_refusal_rendered_by_a_view(client, analyst):
    client.force_login(analyst)
    assert client.get("/cases/").status_code == 403
    [event] = AuthEvent.objects.filter(kind=AuthEvent.Kind.PERMISSION_DENIED)
    assert (event.user, event.organisation, event.path) == (analyst, analyst.organisation, "/cases/")


def test_it_records_a_refusal_raised_as_permission_denied(client, caseworker):
    # The admin site raises PermissionDenied for someone signed in who is not staff.
    sign_in(client, "caseworker")
    assert client.get("/admin/login/").status_code == 403
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.PERMISSION_DENIED, user=caseworker).count() == 1


def test_it_does_not_record_a_404_as_a_refusal(client, caseworker, ngo_b):
    other = CaseFactory(organisation=ngo_b)
    client.force_login(caseworker)
    assert client.get(f"/cases/{other.reference}/").status_code == 404
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.PERMISSION_DENIED).exists()


@pytest.fixture
def admin_client(ngo_a) -> Client:
    admin = User.objects.create_superuser(username="admin", password=PASSWORD, organisation=ngo_a)
    return signed_in_with_second_factor(admin)


def test_the_admin_lists_events_read_only_with_search_and_filter(admin_client, caseworker):
    sign_in(Client(), "caseworker", password="not-the-password")
    url = "/admin/accounts/authevent/"
    page = admin_client.get(url, {"q": "caseworker"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list.values_list("kind", flat=True)) == ["sign_in_failed"]
    filtered = admin_client.get(url, {"kind__exact": "sign_in"})
    assert {event.username for event in filtered.context["cl"].result_list} == {"admin"}
    event = AuthEvent.objects.filter(username="caseworker").get()
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    change = admin_client.post(f"{url}{event.pk}/change/", {"username": "someone-else"})
    assert change.status_code == 403
    assert AuthEvent.objects.get(pk=event.pk).username == "caseworker"
    assert "Save" not in admin_client.get(f"{url}{event.pk}/change/").text
