"""Tamper resistance of the history and access log, and the retention policy."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from casework import services
from casework.audit import log_access
from casework.models import AccessLog, Case, RetentionRun, StatusChange
from casework.tasks import apply_retention_policy
from tests.conftest import requires_postgres
from tests.factories import CaseFactory


def close(case, supervisor, status="withdrawn", on=dt.date(2018, 6, 1)):
    survivor = CaseFactory(organisation=case.organisation, reported_on=dt.date(2018, 1, 1))
    return services.change_status(
        case=case,
        actor=services.Actor.for_user(supervisor),
        to_status=status,
        occurred_on=on,
        expected_version=case.version,
        note="Reason kept for a while.",
        duplicate_of=survivor if status == "duplicate" else None,
    )


@requires_postgres
@pytest.mark.parametrize("table", ["casework_statuschange", "casework_accesslog"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_it_refuses_raw_sql_changes_to_history_and_access_log(case, supervisor, table, statement):
    services.change_status(
        case=case,
        actor=services.Actor.for_user(supervisor),
        to_status="verified",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=1,
    )
    log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=supervisor)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(table=table))
    assert StatusChange.objects.filter(case=case).count() == 1
    assert AccessLog.objects.filter(case=case).count() == 1


def test_it_deletes_old_access_log_rows_and_keeps_young_ones(case, supervisor, settings):
    settings.RETENTION_ACCESS_LOG_DAYS = 30
    log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=supervisor)
    young = AccessLog.objects.get()
    old_at = timezone.now() - dt.timedelta(days=31)
    log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=supervisor)
    with connection.cursor() as cursor:  # back-date one row, as time would
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config('register.retention', 'on', true)")
        cursor.execute("UPDATE casework_accesslog SET at = %s WHERE id <> %s", [old_at, young.pk])
    result = apply_retention_policy.apply().get()
    assert result["access_log_deleted"] == 1
    assert list(AccessLog.objects.values_list("pk", flat=True)) == [young.pk]


def test_it_erases_free_text_of_long_closed_cases_only(ngo_a, supervisor, settings):
    settings.RETENTION_CLOSED_CASE_YEARS = 5
    old_closed = CaseFactory(organisation=ngo_a, reported_on=dt.date(2018, 1, 1), notes="Old remark")
    close(old_closed, supervisor, "withdrawn", dt.date(2018, 6, 1))
    old_duplicate = CaseFactory(organisation=ngo_a, reported_on=dt.date(2018, 1, 1), notes="Dup remark")
    close(old_duplicate, supervisor, "duplicate", dt.date(2019, 1, 1))
    young_closed = CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 1, 1), notes="Young remark")
    close(young_closed, supervisor, "withdrawn", dt.date(2024, 6, 1))
    open_old = CaseFactory(organisation=ngo_a, reported_on=dt.date(2018, 1, 1), notes="Open remark")

    run = apply_retention_policy.apply().get()

    assert run["cases_erased"] == 2 and run["notes_erased"] == 2
    assert Case.objects.get(pk=old_closed.pk).notes == ""
    assert StatusChange.objects.get(case=old_closed).note == ""
    assert Case.objects.get(pk=old_duplicate.pk).notes == ""
    assert Case.objects.get(pk=young_closed.pk).notes == "Young remark"
    assert StatusChange.objects.get(case=young_closed).note == "Reason kept for a while."
    assert Case.objects.get(pk=open_old.pk).notes == "Open remark"
    recorded = RetentionRun.objects.get()
    assert (recorded.cases_erased, recorded.closed_case_years) == (2, 5)
