"""Sessions: their lifetime, and ending them all at once (deactivation, a removed second factor)."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped, unused-ignore]

from accounts.models import AuthenticatorApp, BackupCodes
from config.security import is_public_path

SESSION_STARTED_KEY = "auth_started_at"
LAST_SEEN_KEY = "auth_last_seen_at"
LAST_SEEN_RESOLUTION = 60
DB_SESSION_ENGINES = {"django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"}
# Set on a device being deleted by its owner: the owner's current session survives the removal.
KEEP_SESSION_ATTRIBUTE = "_keep_session_key"


def end_sessions(*users: Any, keep: str | None = None) -> int:
    """End every session of the users (deactivation, a removed device), in one pass. Returns how many ended.

    ``keep``: a session key to spare (the session of a user removing their own device).
    """
    if settings.SESSION_ENGINE not in DB_SESSION_ENGINES or not users:
        return 0  # the users' sessions cannot be listed; ModelBackend still refuses an inactive user
    user_ids = {str(getattr(user, "pk", user)) for user in users}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.session_key != keep and session.get_decoded().get(SESSION_KEY) in user_ids
    ]
    for key in ended:
        store(session_key=key).delete()
    return len(ended)


def _device_removed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # A removed device (a lost phone, reset by an administrator) must not stay trusted in open sessions.
    if instance.confirmed:
        end_sessions(instance.user_id, keep=getattr(instance, KEEP_SESSION_ATTRIBUTE, None))


# Deleted through the register's own (sealed) classes or django-otp's: the signal names the class used.
for _model in (TOTPDevice, StaticDevice, AuthenticatorApp, BackupCodes):
    post_delete.connect(_device_removed, sender=_model, dispatch_uid=f"accounts.sessions.removed.{_model.__name__}")


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
        if is_public_path(request.path_info):
            # The published figures never read the session (so caches may keep them): no renewal there.
            return self.get_response(request)
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
