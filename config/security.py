"""What applies to every page: pages for a signed-in person are never cached.

Sign-in, the second factor, session lifetimes and the record of refusals are
the accounts app's (accounts.two_factor, accounts.sessions, accounts.events).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control


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
