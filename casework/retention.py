"""The retention policy: the oldest access-log rows go; closed cases lose their free text.

History and the access log are append-only (the ORM refuses; on PostgreSQL
the application's role holds no right to change them, and a trigger refuses).
Retention is the one sanctioned exception. On PostgreSQL it runs inside the
database, as ``register_apply_retention()`` (migrations/0016): a function
owned by the tables' owner, which erases only what the policy allows (the
policy is a table only the owner writes, set from the settings at every
migrate) and records the run. On SQLite (the demo) the same rules run here.

Only the oldest access-log rows go, up to the first row still within the
period, so the audit chain (casework.audit_chain) stays whole; the run keeps
the hash of the last row erased, where the remaining chain starts.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from casework.models import AccessLog, Case, RetentionRun, Status, StatusChange

logger = logging.getLogger(__name__)


def apply_retention() -> RetentionRun:
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT register_apply_retention()")
            run = RetentionRun.objects.get(pk=cursor.fetchone()[0])
    else:
        run = _apply_here(now=timezone.now())
    logger.info(
        "Retention: deleted %s access-log rows older than %s days; erased free text of %s closed cases "
        "(%s history notes) closed more than %s years ago",
        run.access_log_deleted,
        run.access_log_days,
        run.cases_erased,
        run.notes_erased,
        run.closed_case_years,
    )
    return run


def _apply_here(*, now: dt.datetime) -> RetentionRun:
    """The same rules as register_apply_retention(), for SQLite (no triggers, one role)."""
    log_days = settings.RETENTION_ACCESS_LOG_DAYS
    case_years = settings.RETENTION_CLOSED_CASE_YEARS
    log_cutoff = now - dt.timedelta(days=log_days)
    closed_cutoff = (now - dt.timedelta(days=365 * case_years)).date()
    with transaction.atomic():
        first_kept = AccessLog.objects.filter(at__gte=log_cutoff).order_by("pk").values_list("pk", flat=True).first()
        erasable = AccessLog.objects.filter(at__lt=log_cutoff)
        if first_kept is not None:
            erasable = erasable.filter(pk__lt=first_kept)
        last = erasable.order_by("-pk").values_list("pk", "chain_hash").first()
        access_log_deleted, anchor = 0, ""
        if last is not None:
            old_rows = AccessLog.objects.filter(pk__lte=last[0])
            access_log_deleted, anchor = old_rows._raw_delete(old_rows.db), last[1]
        # Cases closed (withdrawn or duplicate) whose closing change is older than the cutoff.
        closed = (
            Case.objects.filter(status__in=[Status.WITHDRAWN, Status.DUPLICATE])
            .annotate(closed_on=Max("status_changes__occurred_on"))
            .filter(closed_on__lt=closed_cutoff)
        )
        case_ids = list(closed.values_list("pk", flat=True))
        cases_erased = Case.objects.filter(pk__in=case_ids).exclude(notes="").update(notes="")
        notes_erased = 0
        if case_ids:
            with connection.cursor() as cursor:
                # Past the append-only queryset on purpose: this is the sanctioned erasure.
                table = StatusChange._meta.db_table
                placeholders = ",".join(["%s"] * len(case_ids))
                cursor.execute(
                    f"UPDATE {table} SET note = '' WHERE note <> '' AND case_id IN ({placeholders})",  # noqa: S608
                    case_ids,
                )
                notes_erased = cursor.rowcount
        return RetentionRun.objects.create(
            ran_at=now,
            access_log_deleted=access_log_deleted,
            cases_erased=cases_erased,
            notes_erased=notes_erased,
            access_log_days=log_days,
            closed_case_years=case_years,
            access_log_anchor=anchor,
        )
