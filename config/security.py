"""What applies to every page: pages for a signed-in person are never cached, and no page may use
the browser's cameras, microphones, location, payments or devices (Permissions-Policy).

Sign-in, the second factor, session lifetimes and the record of refusals are
the accounts app's (accounts.two_factor, accounts.sessions, accounts.events).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

PUBLIC_PREFIX = "/public/"


def is_public_path(path: str) -> bool:
    """The published figures: the same page for everyone, served without reading a session (reports.public)."""
    return path.startswith(PUBLIC_PREFIX)


class PrivatePagesMiddleware:
    """Pages shown to a signed-in person may hold case data: never store them in any cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_public_path(request.path_info):
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True, no_store=True)
        return response


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """``camera=(), clipboard-write=(self)``: each feature with the origins that may use it (none: nobody)."""
    return ", ".join(f"{feature}=({' '.join(origins)})" for feature, origins in policy.items())


class PermissionsPolicyMiddleware:
    """Every response says which powerful browser features its page may use (PERMISSIONS_POLICY): none
    but copying a secret shown once to the clipboard. Injected script, were any to run, gets no camera,
    microphone, location, payment or device, and no frame of another site can ask for them either."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = permissions_policy_header(settings.PERMISSIONS_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
