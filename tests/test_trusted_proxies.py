"""The client's address behind trusted proxies (DJANGO_TRUSTED_PROXIES), and never a forged one.

One function, ``accounts.requests.client_address``, decides where a request came from; the lockout,
sign-in events, the access log, the API throttle and the password reset's limits all ask it.
"""

from __future__ import annotations

import ipaddress

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, RequestFactory
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.request import Request

from accounts.models import AuthEvent
from accounts.requests import MAX_FORWARDED_HOPS, client_address
from casework.models import AccessLog
from partners.api.views import TokenRateThrottle
from tests.factories import CaseFactory

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
PROXY = "10.0.0.2"  # the register's own reverse proxy
INNER_PROXY = "10.0.0.3"
CLIENT = "203.0.113.7"  # documentation addresses (RFC 5737)
OTHER_CLIENT = "198.51.100.20"
FORGED = "192.0.2.1"


def address_of(remote: str | None, forwarded: str | None = None) -> str | None:
    meta = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    request = RequestFactory().get("/", **meta)
    if remote is None:
        del request.META["REMOTE_ADDR"]
    else:
        request.META["REMOTE_ADDR"] = remote
    return client_address(request)


@pytest.fixture
def behind_proxies(settings):
    settings.TRUSTED_PROXIES = ("10.0.0.0/8", "fd00::/8")


def test_without_trusted_proxies_it_is_remote_addr_whatever_the_headers():
    assert settings.TRUSTED_PROXIES == ()
    assert address_of(CLIENT, f"{FORGED}, {OTHER_CLIENT}") == CLIENT
    assert address_of(PROXY, CLIENT) == PROXY


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (CLIENT, CLIENT),
        # The client wrote the left part itself; the proxy appended the address that connected to it.
        (f"{FORGED}, {CLIENT}", CLIENT),
        (f"{FORGED},{CLIENT}", CLIENT),
        # Two trusted proxies: the inner one appended the outer one's address.
        (f"{FORGED}, {CLIENT}, {INNER_PROXY}", CLIENT),
        # A client claiming to be a trusted proxy (the left part) is read no further than its own address.
        (f"{INNER_PROXY}, {CLIENT}", CLIENT),
        (f"{CLIENT}, {INNER_PROXY}, {OTHER_CLIENT}", OTHER_CLIENT),
        # Only trusted proxies: a request from inside (a health check) comes from the first of them.
        (INNER_PROXY, INNER_PROXY),
        # Ports and brackets, as some proxies write them; an IPv4 address mapped into IPv6.
        (f"{CLIENT}:5123", CLIENT),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
        (f"::ffff:{CLIENT}", CLIENT),
        (f"{FORGED}, fd00::5, {CLIENT}", CLIENT),
        # No header, or one that names nobody: the proxy itself.
        (None, PROXY),
        ("", PROXY),
        (" , ", PROXY),
        # Garbage to the right stops the walk at the last address known: never a forged one further left.
        (f"{FORGED}, unknown", PROXY),
        (f"{FORGED}, {INNER_PROXY}, not-an-address", PROXY),
        (f"{FORGED}, garbage, {INNER_PROXY}", INNER_PROXY),
        (f"{FORGED}, <script>alert(1)</script>", PROXY),
        (f"{FORGED}, 999.1.1.1", PROXY),
        (f"{FORGED}, 1.2.3.4.5", PROXY),
        (f"{FORGED}, {'1' * 10_000}", PROXY),
        (f"{FORGED}, \x00\u202e{CLIENT}", PROXY),
        (f"{FORGED}, {CLIENT}%eth0", CLIENT),
    ],
)
def test_behind_a_trusted_proxy_the_client_is_the_first_untrusted_address_from_the_right(
    behind_proxies, forwarded, expected
):
    assert address_of(PROXY, forwarded) == expected


def test_a_header_sent_straight_to_the_register_is_ignored(behind_proxies):
    # Not through the proxy: whatever the header says, the address is the one that connected.
    assert address_of(CLIENT, f"{INNER_PROXY}, {FORGED}") == CLIENT
    assert address_of(CLIENT, INNER_PROXY) == CLIENT


def test_a_long_chain_is_read_only_so_far_and_never_reaches_the_forged_part(behind_proxies):
    chain = ", ".join([FORGED] + [INNER_PROXY] * (MAX_FORWARDED_HOPS + 5))
    assert address_of(PROXY, chain) == INNER_PROXY


@pytest.mark.parametrize("remote", [None, "", "garbage", "unix:/run/gunicorn.sock"])
def test_a_remote_addr_that_is_no_address_gives_none(behind_proxies, remote):
    assert address_of(remote, CLIENT) is None


@hypothesis_settings(max_examples=300, deadline=None)
@given(forged=st.text(max_size=200), client=st.ip_addresses())
def test_whatever_a_client_writes_the_proxy_appended_address_wins(forged, client):
    # ``settings`` as a fixture does not mix with hypothesis: the trusted networks are set for this call.
    from django.test import override_settings

    address = (client.ipv4_mapped or client) if isinstance(client, ipaddress.IPv6Address) else client
    if any(address in ipaddress.ip_network(network) for network in ("10.0.0.0/8", "fd00::/8")):
        return  # a client inside the proxies' own network is not a client of this test
    with override_settings(TRUSTED_PROXIES=("10.0.0.0/8", "fd00::/8")):
        assert address_of(PROXY, f"{forged},{client}") == str(address)
        # And the answer is always an address or None, never an exception.
        answer = address_of(PROXY, forged)
        assert answer is None or ipaddress.ip_address(answer)


# --- every door asks the same function ------------------------------------------------------


def through_proxy(client_address_: str, forged: str = FORGED) -> Client:
    """A browser behind the register's proxy: the proxy connects, and appends the client's address."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged}, {client_address_}")


def test_the_lockout_locks_the_real_client_not_the_proxy_nor_a_forged_address(behind_proxies, caseworker):
    for number in range(settings.AXES_FAILURE_LIMIT):
        response = through_proxy(CLIENT, forged=f"192.0.2.{number}").post(
            "/accounts/login/", {"username": "caseworker", "password": "wrong"}
        )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {CLIENT}
    # The guesser stays locked whatever it writes; another person behind the same proxy signs in.
    locked = through_proxy(CLIENT, forged=OTHER_CLIENT).post(
        "/accounts/login/", {"username": "caseworker", "password": PASSWORD}
    )
    assert locked.status_code == 429
    response = through_proxy(OTHER_CLIENT).post("/accounts/login/", {"username": "caseworker", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"


def test_sign_in_events_record_the_real_client(behind_proxies, caseworker):
    through_proxy(CLIENT).post("/accounts/login/", {"username": "caseworker", "password": "wrong"})
    browser = through_proxy(OTHER_CLIENT)
    browser.post("/accounts/login/", {"username": "caseworker", "password": PASSWORD})
    assert dict(AuthEvent.objects.values_list("kind", "ip_address")) == {
        AuthEvent.Kind.SIGN_IN_FAILED: CLIENT,
        AuthEvent.Kind.SIGN_IN: OTHER_CLIENT,
    }


def test_the_access_log_records_the_real_client(behind_proxies, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    browser = through_proxy(CLIENT)
    browser.force_login(caseworker)
    assert browser.get(f"/cases/{case.reference}/").status_code == 200
    assert set(AccessLog.objects.filter(case=case).values_list("ip_address", flat=True)) == {CLIENT}


@pytest.mark.parametrize("trusted", [(), ("10.0.0.0/8",)])
def test_the_api_throttle_keys_on_the_same_address(settings, trusted):
    settings.TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/api/v1/cases/", HTTP_X_FORWARDED_FOR=f"{FORGED}, {CLIENT}")
    request.META["REMOTE_ADDR"] = PROXY
    ident = TokenRateThrottle().get_ident(Request(request))
    assert ident == client_address(request) == (CLIENT if trusted else PROXY)
