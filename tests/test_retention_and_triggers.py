"""Tamper resistance of the history and access log, and the retention policy.

On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE on the history and
the access log; with two roles (CI: MIGRATION_DATABASE_URL) the application's
role holds no right to change them at all, and only the retention function,
which runs as the tables' owner, erases what the policy allows.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from casework import audit, audit_chain, services
from casework.audit import log_access
from casework.models import AccessLog, Case, RetentionRun, StatusChange
from casework.tasks import apply_retention_policy
from tests.conftest import requires_postgres, requires_two_roles
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


def history(case, supervisor):
    services.change_status(
        case=case,
        actor=services.Actor.for_user(supervisor),
        to_status="verified",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=1,
    )
    log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=supervisor)


def sql_refused(statement: str) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


@requires_postgres
@pytest.mark.parametrize("table", ["casework_statuschange", "casework_accesslog"])
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}", "TRUNCATE {table} CASCADE"])
def test_it_refuses_raw_sql_changes_to_history_and_access_log(case, supervisor, table, statement):
    history(case, supervisor)
    sql_refused(statement.format(table=table))
    assert StatusChange.objects.filter(case=case).count() == 1
    assert AccessLog.objects.filter(case=case).count() == 1


@requires_two_roles
@pytest.mark.parametrize("table", ["casework_statuschange", "casework_accesslog"])
def test_the_applications_role_cannot_erase_even_when_it_switches_the_guard_off(case, supervisor, table):
    history(case, supervisor)
    for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET chain_hash = ''", f"TRUNCATE {table}"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL register.retention = 'on'")
            cursor.execute(statement)
    assert StatusChange.objects.filter(case=case).count() == 1 and AccessLog.objects.filter(case=case).count() == 1


@requires_two_roles
def test_the_applications_role_owns_nothing_and_is_no_superuser(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False, False)
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT has_table_privilege('casework_accesslog', 'DELETE'), "
            "has_table_privilege('casework_statuschange', 'UPDATE'), "
            "has_table_privilege('casework_accesslog', 'TRUNCATE'), "
            "has_table_privilege('casework_retentionrun', 'INSERT'), "
            "has_table_privilege('register_retention_policy', 'UPDATE'), "
            "has_table_privilege('casework_accesslog', 'INSERT'), "
            "has_function_privilege('register_apply_retention()', 'EXECUTE')"
        )
        assert cursor.fetchone() == (False, False, False, False, False, True, True)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ALTER TABLE casework_accesslog DISABLE TRIGGER ALL")


def log_at(case, user, when):
    """An access-log row as if written at ``when`` (the clock of log_access, not a later edit)."""
    original = audit.timezone.now
    audit.timezone.now = lambda: when
    try:
        log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=user)
    finally:
        audit.timezone.now = original


def test_it_deletes_the_oldest_access_log_rows_and_keeps_the_chain(case, supervisor):
    old = timezone.now() - dt.timedelta(days=800)  # past the default period (730 days)
    log_at(case, supervisor, old)
    log_at(case, supervisor, old + dt.timedelta(days=1))
    log_at(case, supervisor, timezone.now())
    log_at(case, supervisor, timezone.now())
    assert AccessLog.objects.count() == 4
    result = apply_retention_policy.apply().get()
    assert result["access_log_deleted"] == 2
    assert AccessLog.objects.count() == 2
    assert all(row.at > old + dt.timedelta(days=2) for row in AccessLog.objects.all())
    run = RetentionRun.objects.get()
    assert run.access_log_anchor  # where the remaining chain starts
    assert audit_chain.verify(AccessLog).intact


def test_a_row_past_the_period_after_a_young_one_waits_so_the_chain_stays_whole(case, supervisor):
    log_at(case, supervisor, timezone.now())
    log_at(case, supervisor, timezone.now() - dt.timedelta(days=800))  # written late with an old clock
    assert apply_retention_policy.apply().get()["access_log_deleted"] == 0
    assert audit_chain.verify(AccessLog).intact


def test_it_erases_free_text_of_long_closed_cases_only(ngo_a, supervisor, settings):
    settings.RETENTION_CLOSED_CASE_YEARS = 5  # the default, which the PostgreSQL policy holds too
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
    # The erased notes keep the chain: counted, not broken.
    report = audit_chain.verify(StatusChange)
    assert report.intact and report.erased_notes == 2


@requires_two_roles
def test_the_applications_role_may_not_make_temporary_tables_nor_remove_a_chain_head(case, supervisor):
    """A temporary table could shadow a table's name inside the owner's retention function (found by probing)."""
    history(case, supervisor)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE register_retention_policy (id int, access_log_days int)")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM casework_auditchainhead")
    with connection.cursor() as cursor:
        cursor.execute("SELECT has_table_privilege('casework_auditchainhead', 'UPDATE')")
        assert cursor.fetchone()[0] is True  # the head moves on with every row written


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_the_retention_function_reads_only_the_registers_tables_whatever_the_session_holds(ngo_a, supervisor):
    """Temporary tables named like the policy and the run log, in the very session that calls the function
    (as the owner, who may make them): the function still reads the real policy and records in the real log."""
    import psycopg
    from django.conf import settings

    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    history(case, supervisor)
    before = AccessLog.objects.count()
    owner = settings.MIGRATION_DATABASE or settings.DATABASES["default"]
    with psycopg.connect(
        dbname=connection.settings_dict["NAME"],
        user=owner.get("USER") or None,
        password=owner.get("PASSWORD") or None,
        host=owner.get("HOST") or None,
        port=owner.get("PORT") or None,
    ) as session:
        session.execute(
            "CREATE TEMP TABLE register_retention_policy (id int, access_log_days int, closed_case_years int)"
        )
        session.execute("INSERT INTO register_retention_policy VALUES (1, -1, 0)")
        session.execute(
            "CREATE TEMP TABLE casework_retentionrun (id serial, ran_at timestamptz, access_log_deleted bigint, "
            "cases_erased bigint, notes_erased bigint, access_log_days int, closed_case_years int, "
            "access_log_anchor text)"
        )
        session.execute("SELECT register_apply_retention()")
    assert AccessLog.objects.count() == before, "the real policy keeps recent rows"
    run = RetentionRun.objects.get()
    assert run.access_log_deleted == 0 and run.access_log_days >= 1
    assert audit_chain.verify(AccessLog).intact
