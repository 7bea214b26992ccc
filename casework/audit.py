"""The access log: one row per case read or written, by any door."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import connection
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
    kept = getattr(_deferred, "rows", None)
    if kept is None and _append_in_one_statement(common, case_ids):
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
    if kept is not None:
        kept.extend(rows)  # written when the deferring block ends (``deferred_access_log``)
        return
    _write(rows)


def _write(rows: list[AccessLog]) -> None:
    # Chained (casework.audit_chain) in the transaction that writes them.
    with audit_chain.appending(AccessLog) as chain:
        for row in rows:
            chain.seal(row)
        AccessLog.objects.bulk_create(rows)


_deferred = threading.local()


@contextmanager
def deferred_access_log() -> Iterator[None]:
    """Inside a long transaction (an answered sheet recording thousands of answers), the access log's rows kept
    until the block ends, then chained and written together, in the same transaction.

    Every page view appends to the access log under its chain's one head, which a transaction locks from its
    first append to its commit: a sheet logging as it goes held it for the whole recording (23 s for 1,000
    answers), and every reader in the register waited. Deferred, the head is locked from the block's end to
    the commit only. The rows are the same, in the same order, with the times they were logged at; none is
    lost (they are written before the commit, or the transaction fails). A block that raises writes none of
    them: use it where a refusal anywhere rolls the whole transaction back. Blocks nest (the outermost writes).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("deferred_access_log() belongs inside the transaction that will write the rows")
    outer = getattr(_deferred, "rows", None)
    rows: list[AccessLog] = []
    _deferred.rows = rows if outer is None else outer
    try:
        yield
    finally:
        _deferred.rows = outer
    if outer is None and rows:
        # What the block wrote is checked before the head is locked, not by the commit while it is held.
        audit_chain.check_deferred_constraints()
        _write(rows)


# The page's rows chained, inserted and the chain's head moved on in one statement (issue 16): the head is
# locked, the hashes made by PostgreSQL's sha256 from the same canonical content as audit_chain.link (the
# text around the case's id given by audit_chain.content_around), the rows inserted in chain order and the
# head moved on to the last hash. Sent on its own, it commits as it ends: the head's lock is held from the
# statement's start to its commit and never while the application works or waits for its turn to run.
# Nothing is written when the chain has no head yet.
_APPEND = """
WITH RECURSIVE
head AS (SELECT id, last_hash FROM casework_auditchainhead WHERE "table" = %(table)s FOR UPDATE),
given AS (SELECT case_id, ord FROM unnest(%(case_ids)s::bigint[]) WITH ORDINALITY AS given (case_id, ord)),
chain (ord, case_id, hash) AS (
    SELECT 0::bigint, NULL::bigint, (SELECT last_hash FROM head)::text
    UNION ALL
    SELECT given.ord, given.case_id, encode(sha256(convert_to(
        chain.hash || '|' || %(before)s::text || coalesce(given.case_id::text, 'null') || %(after)s::text, 'UTF8'
    )), 'hex')
    FROM chain JOIN given ON given.ord = chain.ord + 1
),
written AS (
    INSERT INTO casework_accesslog
        (at, user_id, token_id, organisation_id, case_id, action, door, ip_address, chain_hash)
    SELECT %(at)s::timestamptz, %(user_id)s::bigint, %(token_id)s::bigint, %(organisation_id)s::bigint,
        case_id, %(action)s::varchar, %(door)s::varchar, %(ip_address)s::inet, hash
    FROM chain WHERE ord > 0 AND hash IS NOT NULL ORDER BY ord
    RETURNING 1
),
moved AS (
    UPDATE casework_auditchainhead SET last_hash = (SELECT hash FROM chain ORDER BY ord DESC LIMIT 1)
    WHERE id = (SELECT id FROM head) AND EXISTS (SELECT 1 FROM given)
    RETURNING 1
)
SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM moved)
"""


def _append_in_one_statement(common: dict[str, Any], case_ids: list[int | None]) -> bool:
    """The same rows, chained and committed as ``audit_chain.appending`` does, in one statement (``_APPEND``)
    instead of five (issue 16). Before, the head was locked, then the application made the hashes and sent
    the rows: under load its thread waited for its turn to run Python (the GIL) while holding the lock, and
    every page of every reader queued behind it. The same lock, the same hashes, the rows durable before
    the page is answered. Only on PostgreSQL outside any transaction of Django's (a request; not the tests,
    which run inside one); False otherwise, and when the chain has no head yet (nothing is written then)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        return False
    before, after = audit_chain.content_around(AccessLog, common, "case_id")
    params = {**common, "table": AccessLog._meta.db_table, "case_ids": case_ids, "before": before, "after": after}
    connection.ensure_connection()
    started = time.monotonic()
    # Django's wrapper around the raw connection's errors: a failure is a django.db error, and a broken
    # connection is marked so that Django discards it instead of handing it to the next request.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(_APPEND, params)
        written, moved = cursor.fetchone()
    if connection.queries_logged:
        # Past Django's cursor: written into its query log as its own statements are (debug, query counts).
        connection.queries_log.append({"sql": _APPEND.strip(), "time": f"{time.monotonic() - started:.3f}"})
    if written != len(case_ids) or moved != 1:
        if written == 0 and moved == 0:
            return False  # the first row ever: audit_chain.appending makes the head
        raise RuntimeError(f"the access log's append wrote {written} of {len(case_ids)} rows, moved {moved} heads")
    return True
