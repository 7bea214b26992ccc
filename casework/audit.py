"""The access log: one row per case read or written, by any door."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.utils import timezone

from casework.models import AccessLog

if TYPE_CHECKING:
    from accounts.models import ApiToken, User


def client_address(request: HttpRequest | Any | None) -> str | None:
    """The address the request came from. X-Forwarded-For is not trusted (it is trivially spoofed)."""
    if request is None:
        return None
    meta = getattr(request, "META", {})
    address = meta.get("REMOTE_ADDR") or None
    return str(address) if address else None


def log_access(
    *,
    action: str,
    door: str,
    organisation_id: int,
    case_ids: Iterable[int | None] = (None,),
    user: User | None = None,
    token: ApiToken | None = None,
    request: HttpRequest | Any | None = None,
) -> None:
    """Write one row per case (one query whatever the number of cases)."""
    at = timezone.now()
    address = client_address(request)
    rows = [
        AccessLog(
            at=at,
            user=user if user is not None and user.is_authenticated else None,
            token=token,
            organisation_id=organisation_id,
            case_id=case_id,
            action=action,
            door=door,
            ip_address=address,
        )
        for case_id in case_ids
    ]
    if rows:
        AccessLog.objects.bulk_create(rows)
