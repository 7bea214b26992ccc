"""API-wide guards that apply before a view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from partners.api.errors import MESSAGES, error_body

API_PREFIX = "/api/"


class ApiGuardMiddleware:
    """Refuse oversized bodies early, and answer unknown API URLs in the API's error shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > settings.API_MAX_BODY_BYTES:
            return JsonResponse(
                error_body(
                    413,
                    code="body_too_large",
                    message=f"{MESSAGES[413]} The limit is {settings.API_MAX_BODY_BYTES} bytes.",
                ),
                status=413,
            )
        response = self.get_response(request)
        if response.status_code == 404 and not response.get("Content-Type", "").startswith("application/json"):
            return JsonResponse(error_body(404, code="not_found", message=MESSAGES[404]), status=404)
        return response
