"""The retention policy: old access-log rows go; closed cases lose their free text.

History and the access log are append-only (the ORM refuses, and on
PostgreSQL a trigger refuses). Retention is the one sanctioned exception: it
runs inside ``privileged_erasure()``, which lifts the trigger for its own
transaction only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from casework.models import AccessLog, Case, RetentionRun, Status, StatusChange

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def privileged_erasure() -> Iterator[None]:
    """A transaction in which the append-only trigger lets rows be erased."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('register.retention', 'on', true)")
        yield


def apply_retention(*, now: dt.datetime | None = None) -> RetentionRun:
    now = now or timezone.now()
    log_days = settings.RETENTION_ACCESS_LOG_DAYS
    case_years = settings.RETENTION_CLOSED_CASE_YEARS
    log_cutoff = now - dt.timedelta(days=log_days)
    closed_cutoff = (now - dt.timedelta(days=365 * case_years)).date()
    with privileged_erasure():
        old_rows = AccessLog.objects.filter(at__lt=log_cutoff)
        access_log_deleted = old_rows._raw_delete(old_rows.db)
        # Cases closed (withdrawn or duplicate) whose closing change is older than the cutoff.
        closed = (
            Case.objects.filter(status__in=[Status.WITHDRAWN, Status.DUPLICATE])
            .annotate(closed_on=Max("status_changes__occurred_on"))
            .filter(closed_on__lt=closed_cutoff)
        )
        case_ids = list(closed.values_list("pk", flat=True))
        cases_erased = Case.objects.filter(pk__in=case_ids).exclude(notes="").update(notes="")
        notes = StatusChange.objects.filter(case_id__in=case_ids).exclude(note="")
        # Bypass the append-only queryset on purpose: this is the sanctioned erasure.
        notes_erased = notes.values("pk").count()
        if notes_erased:
            with connection.cursor() as cursor:
                table = StatusChange._meta.db_table
                placeholders = ",".join(["%s"] * len(case_ids))
                cursor.execute(
                    f"UPDATE {table} SET note = '' WHERE note <> '' AND case_id IN ({placeholders})",  # noqa: S608
                    case_ids,
                )
        run = RetentionRun.objects.create(
            ran_at=now,
            access_log_deleted=access_log_deleted,
            cases_erased=cases_erased,
            notes_erased=notes_erased,
            access_log_days=log_days,
            closed_case_years=case_years,
        )
    logger.info(
        "Retention: deleted %s access-log rows older than %s days; erased free text of %s closed cases "
        "(%s history notes) closed more than %s years ago",
        access_log_deleted,
        log_days,
        cases_erased,
        notes_erased,
        case_years,
    )
    return run
