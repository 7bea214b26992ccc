"""The lockout (django-axes): wrong passwords, second-factor and enrolment codes, counted together.

Three rules, so that guessing stops without letting a guesser lock someone else out:

- an account *from one address*: after ``AXES_FAILURE_LIMIT`` failures (default 10), that address may
  no longer try that account. Its owner, from their own address, is not affected;
- an address, *whatever the account*: after ``AXES_ADDRESS_FAILURE_LIMIT`` (default 30), the address is
  locked (guessing many accounts; it locks out only those who share the guesser's address);
- an account, *from every address together*: after ``AXES_ACCOUNT_FAILURE_LIMIT`` (default 100), the
  account may be tried only from addresses it signed in from in the last ``LOCKOUT_KNOWN_ADDRESS_DAYS``
  (guessing from many addresses; its owner, at their usual places, still signs in).

Each lasts the cool-off (``AXES_COOLOFF_MINUTES``). The counts come from axes' own records.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from axes.backends import AxesStandaloneBackend  # type: ignore[import-untyped, unused-ignore]
from axes.handlers.database import AxesDatabaseHandler  # type: ignore[import-untyped, unused-ignore]
from axes.handlers.proxy import AxesProxyHandler  # type: ignore[import-untyped, unused-ignore]
from axes.helpers import get_client_username, get_cool_off  # type: ignore[import-untyped, unused-ignore]
from axes.models import AccessAttempt  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings
from django.contrib.auth import logout
from django.db.models import CharField, F, Sum, Value
from django.db.models.functions import Cast, Concat
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.events import record_event
from accounts.models import AuthEvent


def _failures(**where: Any) -> int:
    total = AccessAttempt.objects.filter(**where).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)


def known_address(username: str, address: str | None) -> bool:
    """Whether the account signed in (password accepted) from this address lately."""
    if not username or not address:
        return False
    since = timezone.now() - dt.timedelta(days=settings.LOCKOUT_KNOWN_ADDRESS_DAYS)
    return AuthEvent.objects.filter(
        username=username, kind=AuthEvent.Kind.SIGN_IN, ip_address=address, at__gte=since
    ).exists()


class LockoutHandler(AxesDatabaseHandler):  # type: ignore[misc]
    """axes' database handler, with the three rules above.

    axes compares one number with one limit (``AXES_FAILURE_LIMIT``); each rule's count is scaled to that
    limit (rounded down, so a rule locks exactly at its own limit) and the highest one is returned.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        limit = settings.AXES_FAILURE_LIMIT
        username = get_client_username(request, credentials) or ""
        address = getattr(request, "axes_ip_address", None)
        scaled = [super().get_failures(request, credentials)]  # the account from this address
        if address:
            by_address = _failures(ip_address=address)
            scaled.append(by_address * limit // settings.AXES_ADDRESS_FAILURE_LIMIT)
        if username:
            by_account = _failures(username=username)
            if by_account >= settings.AXES_ACCOUNT_FAILURE_LIMIT and not known_address(username, address):
                scaled.append(limit)
        return int(max(scaled))


class LockoutBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """Refuses a sign-in, whatever the password, while the account or the address is locked.

    Signs no one in by itself: ModelBackend, after it, checks the password.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            # Only code (the test client, a shell) authenticates without a request: there is
            # no address to lock, and no door open to a guesser.
            return None
        super().authenticate(request, username=username, password=password, **kwargs)
        return None


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    response = render(
        request,
        "registration/locked_out.html",
        {
            "minutes": max(1, math.ceil(seconds / 60)) if seconds else None,
            "password_reset_enabled": settings.PASSWORD_RESET_BY_EMAIL,
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def is_locked(request: HttpRequest, username: str) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def count_failed_code(request: HttpRequest, user: Any, kind: str = AuthEvent.Kind.OTP_FAILED) -> bool:
    """A wrong second-factor or enrolment code counts as a failed sign-in. Returns whether that locked the account."""
    record_event(kind, request=request, user=user)
    AxesProxyHandler.user_login_failed(sender=__name__, credentials={"username": user.get_username()}, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def end_locked_session(request: HttpRequest) -> HttpResponse:
    logout(request)
    return lockout_response(request)


def release_account(username: str) -> int:
    """End the lock of an account (its owner proved who they are), not of the addresses that guessed at it.

    django-axes counts failures per (username, address) record, and a lock by account sums the account's
    records, a lock by address the address's. Deleting the account's records would also take the guesses
    off the guessers' addresses; renamed instead (``NAME (released #ID)``, a name no account can have), they
    stop counting against the account and still count against their addresses. Returns how many.
    """
    suffix = Concat(Value(" (released #"), Cast("id", output_field=CharField()), Value(")"))
    return int(
        AccessAttempt.objects.filter(username=username).update(
            username=Concat(F("username"), suffix, output_field=CharField())
        )
    )
