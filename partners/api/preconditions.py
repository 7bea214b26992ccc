"""The preconditions of the API's writes: ``Idempotency-Key`` and ``If-Match``, and replaying a write's response.

A write with a key runs once: its first successful response is stored with a
fingerprint of the request and returned again for a retry with the same key
and body; the same key with another body is refused (422). ``If-Match``
carries the version of the case the client read (its ETag); a stale one is
refused by the service (412).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.request import Request
from rest_framework.response import Response

from partners.models import IdempotencyRecord

MAX_KEY_LENGTH = 200
# A version is a database integer: at most 18 digits (a longer one is no ETag of this API, not a 500).
_ETAG_RE = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


class Problem(Exception):
    """An API error to answer in the one error shape (partners.api.errors renders it)."""

    def __init__(
        self,
        status: int,
        *,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields, self.headers = fields or {}, headers or {}


def etag(version: int) -> str:
    return f'"{version}"'


def idempotency_key(request: Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise Problem(
            428,
            code="idempotency_key_required",
            message="Send an Idempotency-Key header.",
            fields={"Idempotency-Key": ["This header is required."]},
        )
    if not key.isprintable():
        raise Problem(
            400,
            code="invalid",
            message="The Idempotency-Key holds a character that is not allowed.",
            fields={"Idempotency-Key": ["Printable characters only."]},
        )
    if len(key) > MAX_KEY_LENGTH:
        raise Problem(
            400,
            code="invalid",
            message="The Idempotency-Key is too long.",
            fields={"Idempotency-Key": [f"At most {MAX_KEY_LENGTH} characters."]},
        )
    return key


def if_match_version(request: Request) -> tuple[int, str]:
    """The version the client read, and the header as sent (part of the request's fingerprint)."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw:
        raise Problem(
            428,
            code="if_match_required",
            message="Send If-Match with the case's ETag.",
            fields={"If-Match": ["This header is required."]},
        )
    match = _ETAG_RE.match(raw)
    if match is None:
        raise Problem(
            400,
            code="invalid",
            message='If-Match must be the case\'s ETag, e.g. "3".',
            fields={"If-Match": ["Not an ETag of this API."]},
        )
    return int(match.group(1)), raw


def json_object(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise Problem(400, code="invalid", message="Send a JSON object.")
    return request.data


def fingerprint(request: Request, *parts: str) -> str:
    """What makes two requests with one key the same request: the path, the given headers, the body."""
    return hashlib.sha256(
        json.dumps([request.path, *parts, request.data], sort_keys=True, default=str).encode()
    ).hexdigest()


def run_once(*, organisation_id: int, key: str, fingerprint: str, write: Callable[[], Response]) -> Response:
    """Run ``write`` once for this organisation and key, in a transaction; replay its response on a retry.

    A response of 2xx is stored with the write; any other rolls the write back (and the key stays free).
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    organisation_id=organisation_id, key=key, fingerprint=fingerprint, status_code=0, response={}
                )
        except IntegrityError:
            # The same key was used before (or is being used right now: the insert
            # waited for that request to commit). Replay its response.
            return _replay(organisation_id, key, fingerprint)
        response = write()
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)
            return response
        payload = json.loads(json.dumps(response.data, default=str))
        headers = {name: value for name, value in response.items() if name in {"ETag", "Location"}}
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code, response=payload, headers=headers
        )
    return response


def _replay(organisation_id: int, key: str, fingerprint: str) -> Response:
    record = IdempotencyRecord.objects.filter(organisation_id=organisation_id, key=key).first()
    if record is None or record.status_code == 0:
        raise Problem(409, code="in_progress", message="A request with this key is still in progress.")
    if record.fingerprint != fingerprint:
        raise Problem(
            422,
            code="idempotency_key_reused",
            message="This Idempotency-Key was used with another request; use a new key.",
            fields={"Idempotency-Key": ["Already used with a different body."]},
        )
    return Response(
        record.response, status=record.status_code, headers={**record.headers, "Idempotent-Replayed": "true"}
    )
