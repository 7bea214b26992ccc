"""Session lifetime and caching rules that apply to every page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _

SESSION_STARTED_KEY = "auth_started_at"
LAST_SEEN_KEY = "auth_last_seen_at"
LAST_SEEN_RESOLUTION = 60


@receiver(user_logged_in)
def remember_sign_in_time(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED_KEY] = request.session[LAST_SEEN_KEY] = int(time.time())


class SessionLifetimeMiddleware:
    """End a session after 30 idle minutes (SESSION_COOKIE_AGE) or 12 hours after sign-in
    (SESSION_ABSOLUTE_TIMEOUT), however active it is."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and user.is_authenticated and session is not None:
            now = time.time()
            started = session.get(SESSION_STARTED_KEY)
            last_seen = session.get(LAST_SEEN_KEY, started)
            if (
                started is None
                or now - float(started) > settings.SESSION_ABSOLUTE_TIMEOUT
                or now - float(last_seen) > settings.SESSION_COOKIE_AGE
            ):
                logout(request)
                messages.info(request, _("Your session has ended. Please sign in again."))
                return redirect(f"{settings.LOGIN_URL}?next={request.path}")
            if now - float(last_seen) > LAST_SEEN_RESOLUTION:
                # Saving the session renews the idle timeout; once a minute is precise enough.
                session[LAST_SEEN_KEY] = int(now)
        return self.get_response(request)


class PrivatePagesMiddleware:
    """Pages shown to a signed-in person may hold case data: never store them in any cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True, no_store=True)
        return response
