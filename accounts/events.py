"""The record of sign-ins, failures, lockouts, sign-outs, second-factor steps and refusals (AuthEvent).

Never a password or a code: who, what kind, when, from where, on which page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from axes.signals import user_locked_out  # type: ignore[import-untyped, unused-ignore]
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import AuthEvent, User
from accounts.requests import client_address

logger = logging.getLogger(__name__)


def record_event(
    kind: str,
    *,
    request: HttpRequest | Any | None,
    user: Any = None,
    username: str = "",
    path: str = "",
    by: Any = None,
) -> AuthEvent:
    if not isinstance(user, User) or not user.is_authenticated:
        user = None
    if user is not None:
        username = user.get_username()
    if not path and request is not None:
        path = getattr(request, "path", "") or ""
    event = AuthEvent.objects.create(
        at=timezone.now(),
        kind=kind,
        user=user,
        username=(username or "")[:150],
        organisation_id=getattr(user, "organisation_id", None),
        ip_address=client_address(request),
        path=path[:200],
        by=by if isinstance(by, User) else None,
    )
    level = logging.INFO if kind in {AuthEvent.Kind.SIGN_IN, AuthEvent.Kind.SIGN_OUT} else logging.WARNING
    logger.log(
        level,
        "auth %s user=%r ip=%s path=%s by=%r",
        kind,
        event.username,
        event.ip_address,
        event.path,
        event.by.get_username() if event.by is not None else "",
    )
    return event


@receiver(user_logged_in, dispatch_uid="accounts.events.signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_event(AuthEvent.Kind.SIGN_IN, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="accounts.events.sign_in_failed")
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")[:150]
    user = User.objects.filter(username=username).first() if username else None
    record_event(AuthEvent.Kind.SIGN_IN_FAILED, request=request, user=user, username=username)


@receiver(user_logged_out, dispatch_uid="accounts.events.signed_out")
def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_event(AuthEvent.Kind.SIGN_OUT, request=request, user=user)


@receiver(user_locked_out, dispatch_uid="accounts.events.locked_out")
def _locked_out(
    sender: Any, request: HttpRequest | None, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    user = User.objects.filter(username=username).first() if username else None
    record_event(AuthEvent.Kind.LOCKED_OUT, request=request, user=user, username=username or "")


class RefusalLogMiddleware:
    """Records every refusal (403) of a signed-in person, whether a view raised PermissionDenied or rendered it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403:
            user = getattr(request, "user", None)
            # A person's session; an API token's refusals are the API's to record.
            if isinstance(user, User) and user.is_authenticated:
                record_event(AuthEvent.Kind.PERMISSION_DENIED, request=request, user=user)
        return response
