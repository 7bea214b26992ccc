"""A webhook reaches the partner's server and nothing else: no private address, no redirect, no second lookup.

The receivers listen on this machine; names resolve through tests.webhook_helpers.fake_dns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Organisation
from casework import services as case_services
from partners import outbound, webhooks
from partners.models import WebhookDelivery, WebhookEndpoint
from tests.api_helpers import share
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.webhook_helpers import PUBLIC_V4, PUBLIC_V6, Receiver, fake_dns

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # the cloud's metadata service
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",  # site-local
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:8.8.8.8",  # IPv4-mapped, even of a public address: the IPv4 address is the one to name
    "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
]
ALLOWED = [PUBLIC_V4, PUBLIC_V6, "64:ff9b::5db8:d70e", "2002:5db8:d70e::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_it_refuses_every_address_that_is_not_public(address):
    assert not outbound.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_it_allows_public_addresses(address):
    assert outbound.address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.0.0.1", True),
        ("fd12:3456::1", True),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
    ],
)
def test_local_development_allows_loopback_and_private_networks_but_never_the_metadata_service(address, allowed):
    assert outbound.address_allowed(ipaddress.ip_address(address), allow_private=True) is allowed


# --- registration ---------------------------------------------------------------------------------


@pytest.fixture
def partner(db):
    return Organisation.objects.get(slug="qatar")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:5432/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::1]/hook",
        "https://10.0.0.1/",
        "https://192.168.0.10/hook",
        "https://[fe80::1]/",
        "https://[64:ff9b::a00:1]/",
        "https://[2002:a00:1::1]/",
        "https://internal.example/hook",  # a name of the register's own network
        "https://mixed.example/hook",  # one public address and one private: refused
        "https://unknown.example/hook",  # does not resolve: cannot be checked
    ],
)
def test_it_refuses_to_register_a_url_that_does_not_reach_a_public_address(partner, settings, monkeypatch, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    fake_dns(monkeypatch, {"internal.example": ["10.1.2.3"], "mixed.example": [PUBLIC_V4, "127.0.0.1"]})
    with pytest.raises(ValidationError) as refused:
        webhooks.create_endpoint(organisation=partner, url=url, created_by=None)
    [message] = refused.value.message_dict["url"]
    # One message whatever the reason: which one it was would describe the register's network.
    assert "must be a public internet address" in message
    assert "10.1.2.3" not in message and "127.0.0.1" not in message
    assert not WebhookEndpoint.objects.exists()


def test_it_resolves_the_name_when_registering(partner, settings):
    """localhost, resolved by the system (its hosts file), is loopback."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(ValidationError):
        webhooks.create_endpoint(organisation=partner, url="https://localhost/", created_by=None)
    assert not WebhookEndpoint.objects.exists()


def test_it_registers_a_url_whose_name_resolves_to_public_addresses(partner, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    looked_up = fake_dns(monkeypatch, {"hooks.partner.example": [PUBLIC_V4, PUBLIC_V6]})
    endpoint, _secret = webhooks.create_endpoint(
        organisation=partner, url="https://hooks.partner.example/register", created_by=None
    )
    assert endpoint.url == "https://hooks.partner.example/register"
    assert looked_up == ["hooks.partner.example"]


def test_local_development_may_register_a_loopback_receiver(partner, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    endpoint, _secret = webhooks.create_endpoint(organisation=partner, url="http://127.0.0.1:8001/", created_by=None)
    assert endpoint.pk


# --- delivery -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _tasks_in_process(tasks_in_process):
    """With REDIS_URL set (CI) tasks would go to the broker; these tests follow them in-process."""


@pytest.fixture
def change(db, partner):
    """A status change of a case shared with the partner (nothing planned yet)."""
    owner = OrganisationFactory(slug="ngo-owner")
    supervisor = UserFactory(username="owner-supervisor", organisation=owner, role="supervisor")
    case = CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10))
    share(case, partner, "read")
    return case_services.change_status(
        case=case,
        actor=case_services.Actor.for_user(supervisor),
        to_status="located",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=case.version,
    )


def deliver(partner, change, url: str) -> WebhookDelivery:
    """Plan the change's delivery to ``url`` (registered as such, whatever the checks) and attempt it once, last."""
    endpoint = WebhookEndpoint.objects.create(organisation=partner, url=url, salt="0" * 32)
    [delivery_id] = webhooks.plan_deliveries(change.pk)
    assert WebhookDelivery.objects.get(pk=delivery_id).endpoint == endpoint
    with contextlib.suppress(webhooks.DeliveryFailed):
        webhooks.attempt_delivery(delivery_id, final=True)
    return WebhookDelivery.objects.get(pk=delivery_id)


def assert_says_only_its_class(delivery: WebhookDelivery, failure: str, *hidden: str) -> None:
    assert (delivery.state, delivery.last_error, delivery.last_status_code) == ("failed", failure, None)
    for text in ("Errno", "errno", "[", *hidden):
        assert text not in delivery.last_error


@pytest.fixture
def local(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    return settings


def test_it_refuses_at_delivery_a_name_that_now_resolves_to_a_private_address(partner, change, settings, monkeypatch):
    """A name that resolved to a public address at registration and to loopback later (DNS rebinding)."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with Receiver([]) as receiver:
        fake_dns(monkeypatch, {"rebind.example": ["127.0.0.1"]})
        delivery = deliver(partner, change, f"http://rebind.example:{receiver.port}/hook")
    assert receiver.received == []
    assert_says_only_its_class(delivery, outbound.ADDRESS_NOT_ALLOWED, "127.0.0.1", str(receiver.port))


def test_it_refuses_at_delivery_an_address_literal_that_is_not_allowed(partner, change, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with Receiver([]) as receiver:
        delivery = deliver(partner, change, receiver.url)
    assert receiver.received == []
    assert_says_only_its_class(delivery, outbound.ADDRESS_NOT_ALLOWED)


def test_it_connects_to_the_address_it_checked_and_sends_the_host_name(partner, change, local, monkeypatch):
    """One lookup per attempt: a second one could answer another address (DNS rebinding) after the check."""
    answers = iter([["127.0.0.1"]])
    # Any further lookup would answer an address where nothing listens.
    looked_up = fake_dns(monkeypatch, lambda name: next(answers, ["127.0.0.2"]))
    with Receiver([]) as receiver:
        delivery = deliver(partner, change, f"http://hooks.partner.example:{receiver.port}/events?v=1")
    assert looked_up == ["hooks.partner.example"]
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("delivered", 200, "")
    [(headers, _body)] = receiver.received
    assert headers["Host"] == f"hooks.partner.example:{receiver.port}"
    assert receiver.paths == ["/events?v=1"]


def test_it_does_not_follow_a_redirect(partner, change, local):
    with Receiver([]) as elsewhere, Receiver([302], headers={"Location": elsewhere.url}) as receiver:
        delivery = deliver(partner, change, receiver.url)
    assert len(receiver.received) == 1
    assert elsewhere.received == []  # the signed event went nowhere else
    assert (delivery.state, delivery.last_status_code, delivery.last_error) == ("failed", 302, "HTTP 302")


def test_a_refused_connection_is_named_without_the_systems_message(partner, change, local):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    delivery = deliver(partner, change, f"http://127.0.0.1:{port}/")
    assert_says_only_its_class(delivery, outbound.CONNECTION_REFUSED, "refused by", str(port))
    assert delivery.last_error == "connection refused"


def test_a_receiver_that_does_not_answer_is_a_timeout(partner, change, local):
    local.WEBHOOK_TIMEOUT_SECONDS = 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection (the kernel does) and never answers
        delivery = deliver(partner, change, f"http://127.0.0.1:{silent.getsockname()[1]}/")
    assert_says_only_its_class(delivery, outbound.TIMEOUT)


def test_a_name_that_does_not_resolve_is_a_dns_error(partner, change, local, monkeypatch):
    fake_dns(monkeypatch, {})
    delivery = deliver(partner, change, "https://gone.partner.example/hook")
    assert_says_only_its_class(delivery, outbound.DNS_ERROR, "gone.partner.example", "Name or service")


def test_the_delivery_log_never_shows_an_address_even_when_allowed(partner, change, local, monkeypatch):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    fake_dns(monkeypatch, {"hooks.partner.example": ["127.0.0.1"]})
    delivery = deliver(partner, change, f"http://hooks.partner.example:{port}/")
    assert_says_only_its_class(delivery, outbound.CONNECTION_REFUSED, "127.0.0.1")


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A throwaway authority and a certificate for receiver.test, made for this run."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test webhook CA")
    run("req", *curve, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=receiver.test")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:receiver.test\nextendedKeyUsage=serverAuth\n")
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
    )  # fmt: skip
    return folder


@pytest.fixture
def tls_receiver(certificates, local, monkeypatch):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    fake_dns(monkeypatch, {"receiver.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
    with Receiver([], tls=server) as receiver:
        yield receiver


def trust_the_test_authority(monkeypatch, certificates: Path) -> None:
    monkeypatch.setattr(outbound, "tls_context", lambda: ssl.create_default_context(cafile=certificates / "ca.pem"))


def test_it_speaks_tls_to_the_checked_address_with_the_host_name(
    partner, change, tls_receiver, certificates, monkeypatch
):
    trust_the_test_authority(monkeypatch, certificates)
    delivery = deliver(partner, change, f"https://receiver.test:{tls_receiver.port}/hook")
    assert (delivery.state, delivery.last_status_code) == ("delivered", 200)
    assert tls_receiver.server_names == ["receiver.test"]  # SNI
    [(headers, _body)] = tls_receiver.received
    assert headers["Host"] == f"receiver.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_a_tls_error(partner, change, tls_receiver, certificates, monkeypatch):
    trust_the_test_authority(monkeypatch, certificates)
    delivery = deliver(partner, change, f"https://impostor.test:{tls_receiver.port}/hook")
    assert tls_receiver.received == []
    assert_says_only_its_class(delivery, outbound.TLS_ERROR, "receiver.test", "impostor.test", "certificate")


def test_a_certificate_from_an_unknown_authority_is_a_tls_error(partner, change, tls_receiver):
    delivery = deliver(partner, change, f"https://receiver.test:{tls_receiver.port}/hook")
    assert tls_receiver.received == []
    assert_says_only_its_class(delivery, outbound.TLS_ERROR)
