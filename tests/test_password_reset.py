"""A forgotten password, reset by e-mail: through a real SMTP server (aiosmtpd, on this machine), end to end.

The answer never tells whether an account has the address; a link works once; the reset ends the
account's sessions and its lock (not its guessers'); requests are limited per address and per e-mail.
"""

from __future__ import annotations

import email
import logging
import re
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any
from unittest import mock

import pytest
from aiosmtpd.controller import Controller
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from accounts import rate_counters
from accounts.models import AuthEvent, User
from accounts.tasks import send_password_reset_mail
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
NEW_PASSWORD = "a-new-and-rather-long-passphrase-7"
ADDRESS = "caseworker@ngo-a.example"
HOME = "203.0.113.7"  # documentation addresses (RFC 5737)
ELSEWHERE = "198.51.100.20"
RESET = "/accounts/password-reset/"
SENT = "/accounts/password-reset/sent/"
LOGIN = "/accounts/login/"
LINK = re.compile(r"http://testserver(/accounts/password-reset/[^/\s]+/[^/\s]+/)")


class Inbox:
    """What the SMTP server received: (recipients, message) pairs."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def links(self) -> list[str]:
        return [LINK.findall(message.get_body(("plain",)).get_content())[0] for _to, message in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SMTP_SETTINGS = {
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "127.0.0.1",
    "EMAIL_HOST_USER": "",
    "EMAIL_HOST_PASSWORD": "",
    "EMAIL_USE_TLS": False,
    "EMAIL_USE_SSL": False,
    "DEFAULT_FROM_EMAIL": "Children's return register <register@ngo-a.example>",
    # The tests run with production settings and no EMAIL_URL, where the reset is off.
    "PASSWORD_RESET_BY_EMAIL": True,
}


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server on a free local port, and Django's SMTP backend sending to it."""
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with override_settings(**SMTP_SETTINGS, EMAIL_PORT=controller.port):
            yield received
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def own_cache(settings, request) -> None:
    # The request limits live in the cache: a fresh one per test (never a flush of a shared Redis).
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": request.node.nodeid}
    }


@pytest.fixture(autouse=True)
def mail_task() -> Iterator[mock.MagicMock]:
    """The mail task runs here, whatever REDIS_URL says; the mock records what was queued."""

    def run_here(**kwargs: Any) -> Any:
        return send_password_reset_mail.apply(kwargs=kwargs)

    with mock.patch.object(send_password_reset_mail, "delay", side_effect=run_here) as delay:
        yield delay


@pytest.fixture
def worker(caseworker) -> User:
    caseworker.email = ADDRESS
    caseworker.save(update_fields=["email"])
    return caseworker


def ask(address: str = ADDRESS, *, origin: str = HOME, client: Client | None = None):
    return (client or Client(REMOTE_ADDR=origin)).post(RESET, {"email": address})


def sign_in(password: str, username: str = "caseworker", origin: str = HOME):
    return Client(REMOTE_ADDR=origin).post(LOGIN, {"username": username, "password": password})


def set_new_password(link: str, client: Client | None = None, password: str = NEW_PASSWORD):
    client = client or Client(REMOTE_ADDR=HOME)
    moved = client.get(link)
    # Django moves the token out of the address bar (and out of any Referer) into the session.
    assert moved.status_code == 302 and moved["Location"].endswith("/set-password/"), moved
    form = client.get(moved["Location"])
    assert form.status_code == 200 and "Choose a new password" in form.text
    return client.post(moved["Location"], {"new_password1": password, "new_password2": password})


def without_csrf(html: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_sign_in_page_offers_the_reset(client, db):
    with override_settings(PASSWORD_RESET_BY_EMAIL=True):
        page = client.get(LOGIN)
    assert f'href="{RESET}"' in page.text and "Forgot your password?" in page.text


def test_a_link_sent_by_smtp_sets_a_new_password_that_signs_in(inbox, worker):
    browser = Client(REMOTE_ADDR=HOME)
    assert browser.get(RESET).status_code == 200
    response = ask("Caseworker@NGO-A.example", client=browser)  # the address as people type it
    assert response.status_code == 302 and response["Location"] == SENT
    assert "Check your e-mail" in browser.get(SENT).text

    [(recipients, message)] = inbox.messages
    assert recipients == [ADDRESS]
    assert message["To"] == ADDRESS and "register@ngo-a.example" in message["From"]
    assert message["Subject"] == "Reset your password: Children's return register"
    body = message.get_body(("plain",)).get_content()
    assert "“caseworker”" in body and "within 60 minutes" in body
    [link] = inbox.links()

    done = set_new_password(link, browser)
    assert done.status_code == 302 and done["Location"] == "/accounts/password-reset/done/"
    assert "Your password is changed" in browser.get(done["Location"]).text

    signed_in = sign_in(NEW_PASSWORD)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert sign_in(PASSWORD).status_code == 200  # the old password is refused


def test_a_used_link_no_longer_works(inbox, worker):
    ask()
    [link] = inbox.links()
    assert set_new_password(link).status_code == 302
    again = Client().get(link)
    assert again.status_code == 200 and "This link does not work" in again.text
    assert 'name="new_password1"' not in again.text
    # Nor does a second browser that opened the link before it was used.
    early = Client()
    ask()
    [_first, second] = inbox.links()
    moved = early.get(second)
    assert set_new_password(second, password="yet-another-long-passphrase-8").status_code == 302
    late = early.post(moved["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert late.status_code == 200 and "This link does not work" in late.text
    assert sign_in("yet-another-long-passphrase-8").status_code == 302


def test_a_weak_new_password_is_refused_and_the_link_still_works(inbox, worker):
    ask()
    [link] = inbox.links()
    refused = set_new_password(link, password="password")
    assert refused.status_code == 400 and "This password is too short" in refused.text
    assert set_new_password(link).status_code == 302


def test_an_unknown_address_gets_the_same_answer_and_no_mail(inbox, worker, mail_task):
    known = ask(ADDRESS)
    unknown = ask("nobody@nowhere.example", origin=ELSEWHERE)
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert without_csrf(Client().get(known["Location"]).text) == without_csrf(Client().get(unknown["Location"]).text)
    assert [recipients for recipients, _message in inbox.messages] == [[ADDRESS]]
    # The same work in the request either way: one task queued, for the known address with its account.
    assert [call.kwargs["user_ids"] for call in mail_task.call_args_list] == [[worker.pk], []]


def test_only_active_accounts_with_a_usable_password_get_mail(inbox, ngo_a):
    inactive = UserFactory(username="gone", organisation=ngo_a, email="gone@ngo-a.example", is_active=False)
    no_password = UserFactory(username="nopass", organisation=ngo_a, email="nopass@ngo-a.example")
    no_password.set_unusable_password()
    no_password.save()
    for user in (inactive, no_password):
        response = ask(user.email)
        assert response.status_code == 302 and response["Location"] == SENT
    assert inbox.messages == []


def test_an_account_deactivated_before_the_mail_is_sent_gets_none(inbox, worker):
    send_password_reset_mail.apply(
        kwargs={"user_ids": [], "domain": "testserver", "use_https": False, "language": "en"}
    )
    User.objects.filter(pk=worker.pk).update(is_active=False)
    send_password_reset_mail.apply(
        kwargs={"user_ids": [worker.pk], "domain": "testserver", "use_https": False, "language": "en"}
    )
    assert inbox.messages == []


def test_the_reset_ends_every_session_of_the_account(inbox, worker):
    elsewhere = Client(REMOTE_ADDR=ELSEWHERE)
    assert elsewhere.post(LOGIN, {"username": "caseworker", "password": PASSWORD}).status_code == 302
    assert elsewhere.get("/cases/").status_code == 200
    ask()
    [link] = inbox.links()
    set_new_password(link)
    response = elsewhere.get("/cases/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not [s for s in Session.objects.all() if s.get_decoded().get("_auth_user_id") == str(worker.pk)]


def test_the_reset_releases_the_accounts_lock_but_keeps_counting_the_guessers_addresses(inbox, worker, settings):
    # Guessed from several addresses until the account is closed to any address it never signed in from.
    settings.AXES_ACCOUNT_FAILURE_LIMIT = 20
    guessers = [HOME] * 9 + ["192.0.2.1"] * 9 + ["192.0.2.2"] * 2
    for origin in guessers:
        sign_in("wrong-password", origin=origin)
    assert sign_in(PASSWORD, origin=ELSEWHERE).status_code == 429
    ask(origin=ELSEWHERE)
    [link] = inbox.links()
    set_new_password(link, Client(REMOTE_ADDR=ELSEWHERE))
    response = sign_in(NEW_PASSWORD, origin=ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == "/"
    assert AccessAttempt.objects.filter(username="caseworker").count() == 0
    # The guessers' failures still count against their addresses (the address rule).
    assert sum(AccessAttempt.objects.filter(ip_address=HOME).values_list("failures_since_start", flat=True)) == 9
    for _ in range(settings.AXES_ADDRESS_FAILURE_LIMIT - 9):
        sign_in("wrong-password", username="someone-else", origin=HOME)
    assert sign_in(NEW_PASSWORD, origin=HOME).status_code == 429


def test_the_second_factor_is_still_asked_after_a_reset(inbox, supervisor):
    supervisor.email = "supervisor@ngo-a.example"
    supervisor.save(update_fields=["email"])
    ask(supervisor.email)
    [link] = inbox.links()
    set_new_password(link)
    response = sign_in(NEW_PASSWORD, username="supervisor")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/")


def test_requests_and_the_reset_are_recorded_never_the_typed_address(inbox, worker):
    ask(ADDRESS)
    ask("someone.else@elsewhere.example", origin=ELSEWHERE)
    [link] = inbox.links()
    set_new_password(link, Client(REMOTE_ADDR=ELSEWHERE))
    events = list(AuthEvent.objects.order_by("id").values_list("kind", "user", "username", "ip_address"))
    assert events == [
        (AuthEvent.Kind.RESET_REQUESTED, worker.pk, "caseworker", HOME),
        (AuthEvent.Kind.RESET_REQUESTED, None, "", ELSEWHERE),
        (AuthEvent.Kind.PASSWORD_RESET, worker.pk, "caseworker", ELSEWHERE),
    ]
    stored = " ".join(str(value) for row in AuthEvent.objects.values_list() for value in row)
    assert "someone.else" not in stored and ADDRESS not in stored


def test_one_address_may_ask_only_so_often(inbox, worker):
    limit = settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS
    answers = [ask(f"person{number}@nowhere.example").status_code for number in range(limit)]
    assert answers == [302] * limit
    refused = ask(ADDRESS)
    assert refused.status_code == 429 and "Too many requests" in refused.text
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert inbox.messages == []
    # Another address is not held up.
    assert ask(ADDRESS, origin=ELSEWHERE).status_code == 302
    assert len(inbox.messages) == 1
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.RESET_THROTTLED, ip_address=HOME).count() == 1


def test_an_inbox_cannot_be_mail_bombed_from_many_addresses(inbox, worker):
    limit = settings.PASSWORD_RESET_MAILS_PER_EMAIL
    answers = [ask(ADDRESS, origin=f"192.0.2.{number}") for number in range(limit + 3)]
    # The same answer throughout (nothing tells the address is known), but only so many mails.
    assert {(answer.status_code, answer["Location"]) for answer in answers} == {(302, SENT)}
    assert len(inbox.messages) == limit
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.RESET_THROTTLED).count() == 1
    # The limit is by address typed, whatever its case; another address is not held up.
    ask(ADDRESS.upper(), origin="192.0.2.200")
    assert len(inbox.messages) == limit


def test_a_mail_server_that_is_down_changes_nothing_in_the_answer(worker, caplog):
    closed_port = override_settings(**SMTP_SETTINGS, EMAIL_PORT=free_port(), EMAIL_TIMEOUT=2)
    with closed_port, caplog.at_level(logging.WARNING, logger="accounts.password_reset"):
        response = ask()
    assert response.status_code == 302 and response["Location"] == SENT
    assert any("not sent" in record.getMessage() for record in caplog.records)


def test_the_mail_goes_in_the_language_of_the_page(inbox, worker, mail_task):
    browser = Client(REMOTE_ADDR=HOME)
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "uk"
    ask(client=browser)
    assert mail_task.call_args.kwargs["language"] == "uk"


def test_a_bad_address_is_shown_next_to_the_field(worker, inbox):
    with override_settings(PASSWORD_RESET_BY_EMAIL=True):
        response = ask("not an address")
    assert response.status_code == 400 and 'class="errorlist"' in response.text
    assert inbox.messages == []


@pytest.mark.parametrize(
    "url", [RESET, SENT, "/accounts/password-reset/MQ/set-password/", "/accounts/password-reset/done/"]
)
def test_without_a_mail_server_there_is_no_reset_by_e_mail(client, db, url):
    assert settings.PASSWORD_RESET_BY_EMAIL is False  # production settings without EMAIL_URL
    assert client.get(url).status_code == 404
    assert "Forgot your password?" not in client.get(LOGIN).text


def test_without_a_mail_server_mail_is_logged_never_printed(caplog, capsys):
    from django.core.mail import send_mail

    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"  # the tests' own
    unconfigured = override_settings(EMAIL_BACKEND="config.mail.UnconfiguredBackend")
    with unconfigured, caplog.at_level(logging.WARNING, logger="config.mail"):
        assert send_mail("Subject", "a secret link", "from@ngo-a.example", ["to@ngo-a.example"]) == 0
    assert "EMAIL_URL is not set" in caplog.text and "a secret link" not in caplog.text
    assert "a secret link" not in capsys.readouterr().out


def test_redis_down_the_reset_still_answers_and_one_address_is_still_held_up(inbox, worker, settings):
    """The limits are counted in this process while the cache does not answer (accounts.rate_counters)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    rate_counters.clear_local()
    try:
        limit = settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS
        assert ask(ADDRESS).status_code == 302
        assert len(inbox.messages) == 1
        assert [ask(f"person{number}@nowhere.example").status_code for number in range(limit - 1)] == [302] * (
            limit - 1
        )
        assert ask(ADDRESS).status_code == 429
    finally:
        rate_counters.clear_local()
