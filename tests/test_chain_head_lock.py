"""A chain's head is locked from a transaction's append to its commit. A long writer checks what it wrote first
(casework.audit_chain.check_deferred_constraints), so that the commit's checks of those rows' foreign keys are
not made while the head is held: every page view in the register appends to the access log under its one head,
and a web import of 100,000 rows held it for 0.6 to 0.8 s through its commit."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from casework import audit_chain
from casework.audit import deferred_access_log, log_access
from casework.models import AccessLog, Case, StatusChange
from casework.task_models import Task, TaskKind
from tests.factories import CaseFactory
from tests.list_helpers import record_given, sent_list
from tests.thread_helpers import locks_the_history

pytestmark = pytest.mark.django_db

NEEDS_POSTGRESQL = "needs PostgreSQL's deferred constraints and row locks: set DATABASE_URL (CI does)"


def read(case: Case, user) -> None:
    log_access(
        action=AccessLog.Action.VIEW,
        door=AccessLog.Door.WEB,
        organisation_id=case.organisation_id,
        case_ids=[case.pk],
        user=user,
    )


def test_every_deferrable_constraint_is_a_foreign_key_initially_deferred():
    """check_deferred_constraints defers them all again after checking: right only while none of the schema's
    deferrable constraints starts immediate."""
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, contype, condeferred FROM pg_constraint"
            " WHERE condeferrable AND connamespace = 'public'::regnamespace"
        )
        deferrable = cursor.fetchall()
    assert deferrable, "Django's foreign keys are deferrable: the query found none"
    assert [row for row in deferrable if row[2] != "f" or not row[3]] == []


def test_a_long_transactions_rows_are_checked_before_its_log_locks_the_head(ngo_a, caseworker):
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    case = CaseFactory(organisation=ngo_a)
    read(case, caseworker)  # the chain has a head
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), deferred_access_log():
        Task.objects.create(case=case, kind=TaskKind.REVIEW_IDLE, due_on=dt.date(2024, 6, 1))
        read(case, caseworker)
    sql = [query["sql"] for query in queries.captured_queries]
    checked = next(n for n, text in enumerate(sql) if text.startswith("SET CONSTRAINTS ALL IMMEDIATE"))
    locked = next(n for n, text in enumerate(sql) if "casework_auditchainhead" in text and "FOR UPDATE" in text)
    assert checked < locked
    assert audit_chain.verify(AccessLog).intact


def test_a_row_that_breaks_a_foreign_key_is_refused_before_the_head_is_locked(ngo_a, caseworker):
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    case = CaseFactory(organisation=ngo_a)
    read(case, caseworker)
    before = AccessLog.objects.count()
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(IntegrityError),
        transaction.atomic(),
        deferred_access_log(),
    ):
        Task.objects.create(case_id=case.pk + 10**9, kind=TaskKind.REVIEW_IDLE, due_on=dt.date(2024, 6, 1))
        read(case, caseworker)
    assert not any("casework_auditchainhead" in query["sql"] for query in queries.captured_queries)
    assert AccessLog.objects.count() == before
    assert not Task.objects.filter(case_id=case.pk + 10**9).exists()


@pytest.mark.django_db(transaction=True)
def test_a_reader_is_not_held_up_by_a_long_transactions_commit_checks(ngo_a, caseworker, supervisor):
    """Three connections. One holds the organisation's row (as an edit of it would), so that the foreign key
    check of a case a second one wrote has to wait for it; the second, a long transaction (its access-log rows
    deferred to its end, as a sheet's are), then logs and commits. A page view on the third must not wait for
    that check: before, the second took the access log's head first and held it while its COMMIT waited on the
    check, and the page view waited too."""
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    case = CaseFactory(organisation=ngo_a)
    read(case, caseworker)  # the chain has a head
    holding, release = threading.Event(), threading.Event()
    writer_pid: list[int] = []
    failures: list[BaseException] = []

    def hold_the_organisation() -> None:
        try:
            with transaction.atomic():
                list(type(ngo_a).objects.select_for_update().filter(pk=ngo_a.pk).values_list("pk"))
                holding.set()
                release.wait(15)
        except BaseException as error:  # reported to the test below
            failures.append(error)
        finally:
            connections.close_all()

    def write_and_log() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                writer_pid.append(cursor.fetchone()[0])
            with transaction.atomic(), deferred_access_log():
                CaseFactory(organisation=ngo_a)  # its foreign key to the organisation, checked at commit
                read(case, supervisor)
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_organisation)
    holder.start()
    assert holding.wait(15)
    writer = threading.Thread(target=write_and_log)
    writer.start()
    try:
        # Until the writer waits for the organisation's row (a lock), wherever in its transaction that is.
        deadline = time.monotonic() + 15
        waiting = False
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.05)
            if writer_pid:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [writer_pid[0]])
                    row = cursor.fetchone()
                waiting = row is not None and row[0] == "Lock"
        assert waiting, "the writer never waited for the organisation's row"
        started = time.monotonic()
        read(case, caseworker)  # a page view: autocommit, its own connection
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(30)
        writer.join(30)
    assert not failures and not holder.is_alive() and not writer.is_alive()
    assert waited < 2.0, f"the page view waited {waited:.1f} s for another transaction's commit checks"
    assert AccessLog.objects.filter(action=AccessLog.Action.VIEW).count() == 3
    assert audit_chain.verify(AccessLog).intact


@pytest.mark.usefixtures("tasks_in_process")
def test_a_web_import_checks_its_rows_before_it_logs_and_commits(
    client, supervisor, ngo_a, django_capture_on_commit_callbacks, settings, tmp_path
):
    """The web import logs its access after writing its cases, their changes and follow-up tasks: those are
    checked before the access log's head is locked, so that the commit's checks do not hold it (0.6 to 0.8 s at
    100,000 rows before)."""
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    from casework.import_models import ImportJob
    from tests.test_web_import import confirm, csv_bytes, submit_suggested, the_job, upload

    settings.IMPORT_PRIVATE_DIR = tmp_path / "imports"
    client.force_login(supervisor)
    rows = [["source_ref", "sex", "oblast", "reported_on"]] + [[f"S-{n}", "F", "UA-14", "2023-01-10"] for n in range(5)]
    upload(client, ("cases.csv", csv_bytes(rows)))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    with CaptureQueriesContext(connection) as queries:
        confirm(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE and job.case_count == 5
    sql = [query["sql"] for query in queries.captured_queries]
    written = next(n for n, text in enumerate(sql) if text.startswith("SELECT min(id), max(id)"))  # ids, then COPY
    checked = next(n for n, text in enumerate(sql) if text.startswith("SET CONSTRAINTS ALL IMMEDIATE"))
    locked = next(n for n, text in enumerate(sql) if "FOR UPDATE" in text and "'casework_accesslog'" in text)
    assert written < checked < locked
    # Nothing written between the check and the lock: the commit has nothing of the import's left to check.
    assert not [text for text in sql[checked + 1 : locked] if text.startswith(("INSERT", "UPDATE"))]
    assert audit_chain.verify(AccessLog).intact


def test_a_list_sent_checks_its_shares_before_it_logs(ngo_a, qatar, supervisor):
    """Sending a list shares each of its cases with the intermediary (thousands, for a large list), then logs:
    the shares are checked before the access log's head is locked."""
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    from partners.lists import services as list_services

    cases = [CaseFactory(organisation=ngo_a) for _n in range(3)]
    made = list_services.create_list(organisation=ngo_a, intermediary=qatar, created_by=supervisor, cases=cases)
    with CaptureQueriesContext(connection) as queries:
        list_services.send_list(case_list=made, sent_on=dt.date(2024, 3, 1), by=supervisor)
    sql = [query["sql"] for query in queries.captured_queries]
    shared = max(n for n, text in enumerate(sql) if text.startswith('INSERT INTO "partners_share"'))
    checked = next(n for n, text in enumerate(sql) if text.startswith("SET CONSTRAINTS ALL IMMEDIATE"))
    locked = next(n for n, text in enumerate(sql) if "FOR UPDATE" in text and "'casework_accesslog'" in text)
    assert shared < checked < locked


def test_a_sheet_records_the_children_it_cannot_move_before_it_locks_the_history(ngo_a, qatar, supervisor):
    """The answers of children no answer of the sheet moves are recorded first and written as they go, before
    the status history's head is locked (which every status change in the register then waits for): fewer rows
    wait for the sheet's end (tests/test_history_deferred.py). Each child's answers keep their date order."""
    from partners.models import ListAnswer, ListItem

    cases = [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(6)]
    case_list = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    given = [
        (0, "not_found", dt.date(2024, 6, 20)),
        (1, "located", dt.date(2024, 5, 2)),
        (2, "received", dt.date(2024, 6, 21)),
        (3, "returned", dt.date(2024, 5, 3)),
        (4, "refused", dt.date(2024, 6, 22)),
        (5, "located", dt.date(2024, 6, 1)),
        (5, "received", dt.date(2024, 5, 1)),
    ]
    _made, sql = record_given(case_list, cases, given, by=supervisor)
    locked = next(n for n, text in enumerate(sql) if locks_the_history(text))
    recorded = [n for n, text in enumerate(sql) if text.startswith('INSERT INTO "partners_listanswer"')]
    assert ListAnswer.objects.filter(item__case_list=case_list).count() == 7
    items = dict(ListItem.objects.filter(case_list=case_list).values_list("case_id", "pk"))
    unmoved = [items[cases[at].pk] for at in (0, 2, 4)]  # none of their answers moves them

    def for_item(item_id: int, text: str) -> bool:
        return f"({item_id}, " in text  # a row of the statement starts with its item

    before = [text for n, text in enumerate(sql) if n in recorded and n < locked]
    assert all(any(for_item(item_id, text) for text in before) for item_id in unmoved)
    after = [text for n, text in enumerate(sql) if n in recorded and n > locked]
    assert not any(for_item(item_id, text) for item_id in unmoved for text in after)
    statuses = [Case.objects.get(pk=case.pk).status for case in cases]
    assert statuses == ["reported", "located", "reported", "repatriated", "reported", "located"]
    trail = list(ListAnswer.objects.filter(item__case=cases[5]).order_by("id").values_list("answer", flat=True))
    assert trail == ["received", "located"]
    assert ListItem.objects.get(case_list=case_list, case=cases[5]).latest_answer == "located"


def test_an_import_encodes_identifying_details_before_it_locks_the_history(ngo_a, tmp_path):
    """The details' encoding (seconds for thousands of cases) runs before the status history's head is locked,
    which every status change in the register then waits for until the import commits."""
    from casework.importing import apply_import, plan_import
    from linkage.models import CaseEncoding

    cases_file, events_file = tmp_path / "cases.csv", tmp_path / "events.csv"
    header = "source_ref,sex,oblast,reported_on,given_name,family_name,birth_date\n"
    # Invented names, as in every test: no real person's.
    rows = "".join(f"D-{n},F,UA-14,2023-01-10,Ярославина,Квітчастенко{n},2012-0{1 + n}-15\n" for n in range(4))
    cases_file.write_text(header + rows, encoding="utf-8")
    events_file.write_text(
        "source_ref,status,occurred_on,via,duplicate_of,note\n"
        + "".join(f"D-{n},verified,2023-02-01,,,\n" for n in range(4)),
        encoding="utf-8",
    )
    plan = plan_import(cases_file=cases_file, events_file=events_file, organisation=ngo_a, today=dt.date(2025, 6, 1))
    with CaptureQueriesContext(connection) as queries:
        apply_import(plan)
    sql = [query["sql"] for query in queries.captured_queries]
    encoded = next(n for n, text in enumerate(sql) if text.startswith('INSERT INTO "linkage_matchjob"'))
    locked = next(n for n, text in enumerate(sql) if locks_the_history(text))
    assert encoded < locked
    assert CaseEncoding.objects.filter(case__organisation=ngo_a).count() == 4
    assert Case.objects.filter(organisation=ngo_a, status="verified").count() == 4
    assert audit_chain.verify(StatusChange).intact


def test_a_list_closed_checks_the_shares_it_revoked_before_it_logs(ngo_a, qatar, supervisor):
    """Closing a list ends its cases' answer shares (revoked_by, a foreign key), then logs the revocations."""
    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRESQL)
    from partners.lists import services as list_services

    case_list = sent_list(ngo_a, qatar, [CaseFactory(organisation=ngo_a) for _n in range(3)], by=supervisor)
    with CaptureQueriesContext(connection) as queries:
        list_services.close_list(case_list=case_list, by=supervisor)
    sql = [query["sql"] for query in queries.captured_queries]
    revoked = max(n for n, text in enumerate(sql) if text.startswith('UPDATE "partners_share"'))
    checked = next(n for n, text in enumerate(sql) if text.startswith("SET CONSTRAINTS ALL IMMEDIATE"))
    locked = next(n for n, text in enumerate(sql) if "FOR UPDATE" in text and "'casework_accesslog'" in text)
    assert revoked < checked < locked
