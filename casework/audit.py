"""The access log: one row per case read or written, by any door."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.utils import timezone

from accounts.requests import client_address
from casework import audit_chain
from casework.models import AccessLog

if TYPE_CHECKING:
    from accounts.models import ApiToken, User


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
        # Chained (casework.audit_chain) in the transaction that writes them.
        with audit_chain.appending(AccessLog) as chain:
            for row in rows:
                chain.seal(row)
            AccessLog.objects.bulk_create(rows)
