"""Lockout after repeated failed sign-ins (django-axes and accounts.lockout): guessing stops, from one address or
many, without letting a guesser lock someone else out; not fooled by forwarded headers."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from axes.utils import reset
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from accounts.models import AuthEvent

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
ATTACKER = "203.0.113.7"  # documentation addresses (RFC 5737)
ELSEWHERE = "198.51.100.20"
HOME = "198.51.100.77"


def attempt(username: str, password: str, address: str = ATTACKER, **headers):
    return Client(REMOTE_ADDR=address, **headers).post("/accounts/login/", {"username": username, "password": password})


def fail_until_locked(username: str = "caseworker", address: str = ATTACKER, **headers):
    responses = [attempt(username, "wrong-password", address, **headers) for _ in range(settings.AXES_FAILURE_LIMIT)]
    return responses


def test_the_limit_and_cool_off_come_from_the_settings():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert dt.timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert (settings.AXES_ADDRESS_FAILURE_LIMIT, settings.AXES_ACCOUNT_FAILURE_LIMIT) == (30, 100)
    assert settings.AXES_HANDLER == "accounts.lockout.LockoutHandler"
    assert settings.AXES_RESET_ON_SUCCESS is False


def test_it_locks_the_account_after_the_limit_and_refuses_even_the_right_password(caseworker):
    responses = fail_until_locked()
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    locked = responses[-1]
    assert locked.status_code == 429
    assert "Sign-in locked" in locked.text and "Try again in 30 minutes" in locked.text
    assert locked["Retry-After"] == str(30 * 60)
    assert "Content-Security-Policy" in locked
    right = attempt("caseworker", PASSWORD)
    assert right.status_code == 429
    assert "_auth_user_id" not in right.client.session


def test_a_guesser_cannot_lock_the_owner_out_from_another_address(caseworker):
    fail_until_locked(address=ATTACKER)
    assert attempt("caseworker", PASSWORD, address=ATTACKER).status_code == 429
    response = attempt("caseworker", PASSWORD, address=ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == "/"


def test_it_locks_an_address_that_guesses_many_accounts(caseworker):
    for number in range(settings.AXES_ADDRESS_FAILURE_LIMIT - 1):
        attempt(f"guess-{number}", "wrong-password")
    # One short of the address's limit (and never ten on one account): still open.
    assert attempt("caseworker", PASSWORD, address=ATTACKER).status_code == 302
    attempt("guess-last", "wrong-password")
    assert attempt("caseworker", PASSWORD, address=ATTACKER).status_code == 429
    # The account itself is not locked: from another address it signs in.
    response = attempt("caseworker", PASSWORD, address=ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == "/"


def test_guessing_one_account_from_many_addresses_stops_but_its_owner_still_signs_in(caseworker, settings):
    settings.AXES_ACCOUNT_FAILURE_LIMIT = 25
    assert attempt("caseworker", PASSWORD, address=HOME).status_code == 302  # the owner's usual place
    guessers = ["192.0.2.1"] * 9 + ["192.0.2.2"] * 9 + ["192.0.2.3"] * 6  # never ten from one address
    for address in guessers:
        attempt("caseworker", "wrong-password", address=address)
    # 24 failures in all, one short of the account's limit: any address may still try.
    assert attempt("caseworker", PASSWORD, address="192.0.2.100").status_code == 302
    attempt("caseworker", "wrong-password", address="192.0.2.3")
    # Now a new address is refused, even with the right password...
    assert attempt("caseworker", PASSWORD, address="192.0.2.101").status_code == 429
    # ...while the owner, where they signed in before, is not locked out.
    for known in (HOME, "192.0.2.100"):
        response = attempt("caseworker", PASSWORD, address=known)
        assert response.status_code == 302 and response["Location"] == "/"


def test_the_lock_ends_after_the_cool_off(caseworker):
    fail_until_locked()
    assert attempt("caseworker", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=dt.datetime.now(tz=dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(minutes=1)
    )
    response = attempt("caseworker", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_lock_does_not_end_before_the_cool_off(caseworker):
    fail_until_locked()
    AccessAttempt.objects.update(
        attempt_time=dt.datetime.now(tz=dt.UTC) - settings.AXES_COOLOFF_TIME + dt.timedelta(minutes=1)
    )
    assert attempt("caseworker", PASSWORD).status_code == 429


@pytest.mark.parametrize("how", ["function", "command"])
def test_an_administrator_can_release_a_lock(caseworker, how):
    fail_until_locked()
    if how == "function":
        reset(username="caseworker")
    else:
        call_command("axes_reset_username", "caseworker")
    response = attempt("caseworker", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"


def test_fewer_failures_than_the_limit_do_not_lock(caseworker):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt("caseworker", "wrong-password")
    assert attempt("caseworker", PASSWORD).status_code == 302


def test_every_failure_and_the_lock_are_recorded_and_logged(caseworker):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger = logging.getLogger("accounts.events")
    logger.addHandler(handler)
    try:
        fail_until_locked()
    finally:
        logger.removeHandler(handler)
    limit = settings.AXES_FAILURE_LIMIT
    assert AccessFailureLog.objects.filter(username="caseworker").count() == limit
    assert AccessFailureLog.objects.filter(username="caseworker", locked_out=True).count() == 1
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.SIGN_IN_FAILED, user=caseworker).count() == limit
    [lock] = AuthEvent.objects.filter(kind=AuthEvent.Kind.LOCKED_OUT)
    assert (lock.username, lock.user, lock.organisation, lock.ip_address) == (
        "caseworker",
        caseworker,
        caseworker.organisation,
        ATTACKER,
    )
    lines = [record.getMessage() for record in records]
    assert sum("sign_in_failed" in line and "'caseworker'" in line for line in lines) == limit
    assert any("locked_out" in line and ATTACKER in line for line in lines)
    # Nothing typed in the password field is kept.
    assert "wrong-password" not in "".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert not any("wrong-password" in line for line in lines)
