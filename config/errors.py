"""Error answers for the whole site: the API's in its one JSON shape, 500 included; the pages' as pages.

config/urls.py names ``bad_request`` and ``server_error`` as Django's handler400 and
handler500. ``MalformedRequestMiddleware`` refuses, before anything reads them, requests
whose path, query, headers or form carry what no page or database column takes: a NUL
character (PostgreSQL refuses it in text: the request would end in a 500), an unpaired
surrogate, or an address longer than any the site makes. ``BusyMiddleware`` answers a request that
waited too long for a row another transaction holds (``settings.WEB_LOCK_TIMEOUT_SECONDS``) with "busy":
a 503 saying nothing was changed, in the API's shape under /api/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import psycopg
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from partners.api.errors import MESSAGES, api_server_error, error_body
from partners.api.middleware import API_PREFIX
from partners.api.parsers import clean_text

MAX_PATH_LENGTH = 2048
MAX_QUERY_LENGTH = 8192
NOT_ALLOWED = "Contains a character that is not allowed (NUL, or an unpaired surrogate)."
TOO_LONG = "Too long."
# Seconds a client is asked to wait before it tries again after "busy".
BUSY_RETRY_AFTER = 60

logger = logging.getLogger(__name__)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body(400, code="bad_request", message=MESSAGES[400]), status=400)
    response: HttpResponse = defaults.bad_request(request, exception or Exception())
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return api_server_error(request)
    return defaults.server_error(request)


def _first_unclean(pairs: Iterable[tuple[str, list[str]]]) -> str | None:
    for name, values in pairs:
        if not clean_text(name):
            return "query"
        if not all(clean_text(value) for value in values):
            return name
    return None


def _header_name(meta_key: str) -> str:
    return meta_key.removeprefix("HTTP_").replace("_", "-").title()


def malformed(request: HttpRequest) -> tuple[str, str] | None:
    """What is wrong with the request, as (where, why), or None."""
    path = request.path_info
    if not clean_text(path):
        return "path", NOT_ALLOWED
    if len(path) > MAX_PATH_LENGTH:
        return "path", TOO_LONG
    for key, value in request.META.items():
        is_header = key.startswith("HTTP_") or key in {"CONTENT_TYPE", "CONTENT_LENGTH"}
        if is_header and isinstance(value, str) and not clean_text(value):
            return _header_name(key), NOT_ALLOWED
    # A cookie's value is unquoted: "\000" in quotes becomes a NUL (the session's key is looked up).
    if not all(clean_text(name) and clean_text(value) for name, value in request.COOKIES.items()):
        return "Cookie", NOT_ALLOWED
    if len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_LENGTH:
        return "query", TOO_LONG
    where = _first_unclean(request.GET.lists())
    if where is not None:
        return where, NOT_ALLOWED
    # The API reads JSON only, and its parser checks the body (partners.api.parsers).
    if request.method == "POST" and not _is_api(request):
        where = _first_unclean(request.POST.lists())
        if where is not None:
            return where, NOT_ALLOWED
    return None


class MalformedRequestMiddleware:
    """A request no page can take is a 400 (in the API's shape under /api/), never a 500 further on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = malformed(request)
        if problem is None:
            return self.get_response(request)
        where, why = problem
        if _is_api(request):
            body = error_body(400, code="bad_request", message=MESSAGES[400], fields={where: [why]})
            return JsonResponse(body, status=400)
        return bad_request(request)


def waited_too_long(error: BaseException) -> bool:
    """PostgreSQL gave up waiting for a lock (lock_timeout): the transaction was rolled back, nothing changed."""
    return isinstance(error, OperationalError) and isinstance(error.__cause__, psycopg.errors.LockNotAvailable)


class BusyMiddleware:
    """A view that waited longer than ``WEB_LOCK_TIMEOUT_SECONDS`` for a row another transaction holds (a large
    import, a list's answers being recorded) answers 503 "busy" with Retry-After: its transaction was rolled
    back, so nothing was changed, and the page or the API says so rather than a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not waited_too_long(exception):
            return None
        logger.warning("busy: %s %s waited too long for a lock and changed nothing", request.method, request.path)
        response: HttpResponse
        if _is_api(request):
            response = JsonResponse(error_body(503, code="busy", message=MESSAGES[503]), status=503)
        else:
            response = render(request, "busy.html", status=503)
        response["Retry-After"] = str(BUSY_RETRY_AFTER)
        # Logged once, as the warning above: django.request would log every 503 again as an ERROR, and a long
        # import would then page whoever watches the errors for what is a wait, not a fault.
        setattr(response, "_has_been_logged", True)  # noqa: B010 (django.utils.log.log_response reads it)
        return response
