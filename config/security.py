"""Session lifetime, the second factor, the record of refusals and caching rules: what applies to every page."""

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
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import urlencode
from django.utils.translation import gettext as _

# Connects the receivers that record sign-ins, failures, lockouts and sign-outs.
from partners import auth
from partners.models import AuthEvent, User

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


class SecondFactorMiddleware:
    """Until a session has passed the second factor asked of it, it reaches only the two-factor
    pages, sign-out and the language switch. Costs no query: the session says it all."""

    # The partner API authenticates with bearer tokens, never with this session.
    OPEN_PREFIXES = ("/api/",)
    OPEN_URL_NAMES = ("two-factor-verify", "two-factor-setup", "two-factor-backup-codes", "logout", "set_language")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._open_paths: set[str] | None = None

    def _is_open(self, path: str) -> bool:
        if self._open_paths is None:
            self._open_paths = {reverse(name) for name in self.OPEN_URL_NAMES}
        static = "/" + settings.STATIC_URL.lstrip("/")
        return path in self._open_paths or path.startswith((*self.OPEN_PREFIXES, static))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._is_open(request.path_info) and auth.second_factor_outstanding(request):
            target = reverse("two-factor-verify")
            if request.method == "GET":
                target = f"{target}?{urlencode({'next': request.get_full_path()})}"
            return redirect(target)
        return self.get_response(request)


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
                auth.record_event(AuthEvent.Kind.PERMISSION_DENIED, request=request, user=user)
        return response
