"""What a request says about who sent it and where they go next: helpers every door uses."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User


def client_address(request: HttpRequest | Any | None) -> str | None:
    """The address the request came from: REMOTE_ADDR. X-Forwarded-For is not trusted (it is trivially spoofed).

    Also what django-axes locks (AXES_CLIENT_IP_CALLABLE).
    """
    if request is None:
        return None
    meta = getattr(request, "META", {})
    address = meta.get("REMOTE_ADDR") or None
    return str(address) if address else None


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user of a page behind ``login_required``."""
    user = request.user
    assert isinstance(user, User), "only for views behind login_required"
    return user


def safe_next_url(request: HttpRequest, fallback: str | None = None) -> str:
    """The ``next`` of a form or link when it stays on this site; else ``fallback`` (the home page)."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback if fallback is not None else str(settings.LOGIN_REDIRECT_URL)
