"""The lockout (django-axes): wrong passwords and wrong second-factor codes, counted together."""

from __future__ import annotations

import math
from typing import Any

from axes.backends import AxesStandaloneBackend  # type: ignore[import-untyped, unused-ignore]
from axes.handlers.proxy import AxesProxyHandler  # type: ignore[import-untyped, unused-ignore]
from axes.helpers import get_cool_off  # type: ignore[import-untyped, unused-ignore]
from axes.models import AccessAttempt  # type: ignore[import-untyped, unused-ignore]
from django.conf import settings
from django.contrib.auth import logout
from django.db.models import CharField, F, Value
from django.db.models.functions import Cast, Concat
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.events import record_event
from accounts.models import AuthEvent


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


def count_failed_code(request: HttpRequest, user: Any) -> bool:
    """A wrong second-factor code counts as a failed sign-in. Returns whether that locked the account."""
    record_event(AuthEvent.Kind.OTP_FAILED, request=request, user=user)
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
