"""Periodic casework tasks."""

from __future__ import annotations

from celery import shared_task

from casework.retention import apply_retention


@shared_task(
    acks_late=True, time_limit=1800, soft_time_limit=1700, autoretry_for=(ConnectionError,), retry_backoff=True
)
def apply_retention_policy() -> dict[str, int]:
    run = apply_retention()
    return {
        "access_log_deleted": run.access_log_deleted,
        "cases_erased": run.cases_erased,
        "notes_erased": run.notes_erased,
    }


@shared_task(
    acks_late=True, time_limit=1800, soft_time_limit=1700, autoretry_for=(ConnectionError,), retry_backoff=True
)
def review_idle_cases() -> int:
    """Daily: a review follow-up on every open case with no status change for the organisation's days."""
    from casework.followups import review_idle_cases as make_reviews

    return make_reviews()


@shared_task(
    acks_late=True, time_limit=1800, soft_time_limit=1700, autoretry_for=(ConnectionError,), retry_backoff=True
)
def send_daily_digests() -> dict[str, int]:
    """Daily: each user's digest of follow-ups and notices, by e-mail (counts and case references only)."""
    from casework.notices import send_digests

    sent, failed = send_digests()
    return {"sent": sent, "failed": failed}


# --- the web import (casework.web_import): queued after the commit of the step that asks for it ---------


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def check_import(job_id: int) -> None:
    """Convert an uploaded file and check it (``plan_import``): every problem, or the counts; writes no case."""
    from casework import web_import

    web_import.check(job_id)


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def run_import(job_id: int) -> None:
    """Import a checked, confirmed file: all of it in one transaction, or nothing."""
    from casework import web_import

    web_import.run(job_id)


@shared_task(acks_late=True, time_limit=600, soft_time_limit=540, autoretry_for=(ConnectionError,), retry_backoff=True)
def sweep_imports() -> dict[str, int]:
    """Hourly: the files of imports abandoned for IMPORT_UPLOAD_HOURS, and references files past their time."""
    from casework import web_import

    return web_import.sweep()
