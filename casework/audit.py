"""The access log: one row per case read or written, by any door."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from accounts.requests import client_address
from casework import audit_chain
from casework.models import AccessLog, AuditChainHead

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
    user = user if user is not None and user.is_authenticated else None
    case_ids = list(case_ids)
    if not case_ids:
        return
    common = {
        "at": at,
        "user_id": user.pk if user is not None else None,
        "token_id": token.pk if token is not None else None,
        "organisation_id": organisation_id,
        "action": action,
        "door": door,
        "ip_address": audit_chain.normal_address(address),
    }
    if _append_in_two_round_trips(common, case_ids):
        return
    rows = [
        AccessLog(
            at=at,
            user=user,
            token=token,
            organisation_id=organisation_id,
            case_id=case_id,
            action=action,
            door=door,
            ip_address=address,
        )
        for case_id in case_ids
    ]
    # Chained (casework.audit_chain) in the transaction that writes them.
    with audit_chain.appending(AccessLog) as chain:
        for row in rows:
            chain.seal(row)
        AccessLog.objects.bulk_create(rows)


_COLUMNS = ("at", "user_id", "token_id", "organisation_id", "case_id", "action", "door", "ip_address", "chain_hash")
_LOCK_HEAD = 'SELECT id, last_hash FROM casework_auditchainhead WHERE "table" = %s FOR UPDATE'
_INSERT = (
    "INSERT INTO casework_accesslog (at, user_id, token_id, organisation_id, case_id, action, door, ip_address, "
    "chain_hash) "
    "SELECT * FROM unnest(%s::timestamptz[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::varchar[], %s::varchar[], %s::inet[], %s::varchar[])"
)
_MOVE_HEAD = "UPDATE casework_auditchainhead SET last_hash = %s WHERE id = %s"


def _append_in_two_round_trips(common: dict[str, Any], case_ids: list[int | None]) -> bool:
    """The same rows, chained and committed as ``audit_chain.appending`` does, in two round trips instead of
    five (issue 16): BEGIN and the head's lock together, then the insert, the head moved on and COMMIT
    together (psycopg's pipeline). Nothing changes but the waiting: the same lock, the same transaction, the
    rows durable before the page is answered. Only on PostgreSQL outside any transaction of Django's (a
    request; not the tests, which run inside one); False otherwise, and when the chain has no head yet."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        return False
    connection.ensure_connection()
    raw = connection.connection
    started = time.monotonic()
    # Django's wrapper around the raw connection's errors: a failure is a django.db error, and a broken
    # connection is marked so that Django discards it instead of handing it to the next request.
    with connection.wrap_database_errors, raw.pipeline(), raw.transaction(), raw.cursor() as cursor:
        cursor.execute(_LOCK_HEAD, [AccessLog._meta.db_table])
        head = cursor.fetchone()
        if head is None:
            return False  # the first row ever: audit_chain.appending makes the head
        chain = audit_chain.Chain(AccessLog, AuditChainHead(pk=head[0], last_hash=head[1]))
        hashes = chain.seal_many(common, "case_id", case_ids)
        columns = [[common[name]] * len(case_ids) if name in common else None for name in _COLUMNS]
        columns[_COLUMNS.index("case_id")] = case_ids
        columns[_COLUMNS.index("chain_hash")] = hashes
        cursor.execute(_INSERT, columns)
        cursor.execute(_MOVE_HEAD, [chain.last, head[0]])
    if connection.queries_logged:
        # Past Django's cursor: written into its query log as its own statements would be (debug, query counts).
        took = f"{time.monotonic() - started:.3f}"
        for sql in ("BEGIN", _LOCK_HEAD, _INSERT, _MOVE_HEAD, "COMMIT"):
            connection.queries_log.append({"sql": sql, "time": took if sql == "COMMIT" else "0.000"})
    return True
