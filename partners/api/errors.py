"""One JSON shape for every API error: {"error": {"status", "code", "message", "fields"}}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

MESSAGES = {
    400: "The request is not valid.",
    401: "Authentication is required: send Authorization: Bearer <token>.",
    403: "Your token's scope does not allow this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    406: "This format is not available.",
    412: "The case changed since the version you sent in If-Match.",
    413: "The request body is too large.",
    415: "Send JSON (Content-Type: application/json).",
    422: "The request cannot be applied.",
    428: "A required precondition header is missing.",
    429: "Too many requests: slow down.",
    500: "An internal error occurred.",
    503: (
        "The register is busy writing other changes to the same records (a large import, or a list's answers "
        "being recorded). Nothing was changed: try again after Retry-After seconds."
    ),
}


def error_body(
    status_code: int, *, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"error": {"status": status_code, "code": code, "message": message, "fields": fields or {}}}


def error_response(
    status_code: int,
    *,
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(status_code, code=code, message=message, fields=fields), status=status_code, headers=headers
    )


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for sub_key, messages in _flatten(value, name).items():
                fields.setdefault(sub_key, []).extend(messages)
    elif isinstance(detail, list):
        for item in detail:
            if isinstance(item, (dict, list)):
                for sub_key, messages in _flatten(item, prefix).items():
                    fields.setdefault(sub_key, []).extend(messages)
            else:
                fields.setdefault(prefix or "non_field_errors", []).append(str(item))
    else:
        fields.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return fields


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    from partners.api.preconditions import Problem

    if isinstance(exc, Problem):
        return error_response(exc.status, code=exc.code, message=exc.message, fields=exc.fields, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = MESSAGES[400]
    else:
        detail = getattr(exc, "detail", None)
        fields = {}
        message = str(detail) if detail else MESSAGES.get(response.status_code, "Error.")
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            code = codes
    response.data = error_body(response.status_code, code=str(code), message=message, fields=fields)
    return response


def json_error_view(status_code: int, code: str) -> Callable[..., JsonResponse]:
    def view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
        return JsonResponse(error_body(status_code, code=code, message=MESSAGES[status_code]), status=status_code)

    return view


api_not_found = json_error_view(status.HTTP_404_NOT_FOUND, "not_found")
api_server_error = json_error_view(status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error")
