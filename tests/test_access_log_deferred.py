"""A long transaction keeps its access-log rows until its end (casework.audit.deferred_access_log), so that the
access log's chain head, which every page view locks to append, is not held while it works: an answered sheet
recording its answers is the one that needs it."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from casework import audit, audit_chain
from casework.audit import deferred_access_log, log_access
from casework.models import AccessLog, Case
from partners.lists import services, sheets
from partners.models import ListAnswer
from tests.factories import CaseFactory
from tests.list_helpers import located_sheet, recording_paused, sent_list
from tests.thread_helpers import Halfway

pytestmark = pytest.mark.django_db


def touches_the_log(sql: str) -> bool:
    return "casework_accesslog" in sql or "casework_auditchainhead" in sql


def read(case: Case, user, action: str = AccessLog.Action.VIEW) -> None:
    log_access(
        action=action, door=AccessLog.Door.WEB, organisation_id=case.organisation_id, case_ids=[case.pk], user=user
    )


def test_the_rows_are_written_at_the_end_of_the_block_in_order_and_chained(ngo_a, caseworker):
    first, second = CaseFactory(organisation=ngo_a), CaseFactory(organisation=ngo_a)
    read(first, caseworker)  # the chain has a head before
    with transaction.atomic():
        with CaptureQueriesContext(connection) as inside, deferred_access_log():
            read(first, caseworker)
            read(second, caseworker, AccessLog.Action.STATUS_CHANGE)
            read(first, caseworker)
            written_inside = AccessLog.objects.count()
        assert written_inside == 1
    during = [query["sql"] for query in inside.captured_queries]
    # Nothing of the log's until the block ends; then its head and the rows.
    last_count = max(position for position, sql in enumerate(during) if "COUNT(*)" in sql)
    assert not any(touches_the_log(sql) for sql in during[:last_count])
    assert any(touches_the_log(sql) for sql in during[last_count:])
    rows = list(AccessLog.objects.order_by("id").values_list("case_id", "action", "at"))
    assert [(case_id, action) for case_id, action, _at in rows] == [
        (first.pk, "view"),
        (first.pk, "view"),
        (second.pk, "status_change"),
        (first.pk, "view"),
    ]
    assert [at for _case, _action, at in rows] == sorted(at for _case, _action, at in rows)
    assert audit_chain.verify(AccessLog).intact


def test_a_block_that_raises_writes_nothing(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a)
    with pytest.raises(ZeroDivisionError), transaction.atomic(), deferred_access_log():
        read(case, caseworker)
        raise ZeroDivisionError
    assert not AccessLog.objects.exists()
    # The next row is written at once, as before.
    with transaction.atomic():
        read(case, caseworker)
    assert AccessLog.objects.count() == 1


def test_blocks_nest_and_the_outermost_writes(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a)
    with transaction.atomic(), deferred_access_log():
        read(case, caseworker)
        with deferred_access_log():
            read(case, caseworker)
        assert not AccessLog.objects.exists()
    assert AccessLog.objects.count() == 2 and audit_chain.verify(AccessLog).intact


def test_outside_a_transaction_it_refuses(monkeypatch):
    monkeypatch.setattr(audit, "connection", SimpleNamespace(in_atomic_block=False))
    with pytest.raises(RuntimeError, match="inside the transaction"), deferred_access_log():
        pass


def test_a_sheet_locks_the_access_log_only_after_its_last_answer(ngo_a, qatar, supervisor):
    cases = [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(6)]
    case_list = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    kinds = ("located", "returned", "under_verification")
    answers = [
        sheets.SheetAnswer(
            line=n + 2, reference=case.reference, answer=kinds[n % 3], answered_on=dt.date(2024, 6, 1), note=""
        )
        for n, case in enumerate(cases)
    ]
    before = AccessLog.objects.count()
    answerer = services.Answerer(user=supervisor, token=None, command=False)
    with CaptureQueriesContext(connection) as queries:
        made = sheets.apply_answers(name="answers.csv", case_list=case_list, answers=answers, answerer=answerer)
    assert len(made) == 6
    sql = [query["sql"] for query in queries.captured_queries]
    last_answer = max(position for position, text in enumerate(sql) if 'INSERT INTO "partners_listanswer"' in text)
    log_writes = [position for position, text in enumerate(sql) if 'INSERT INTO "casework_accesslog"' in text]
    assert log_writes and min(log_writes) > last_answer
    # One row an answer, as before (a status change for the four that moved a case, an edit for the others),
    # in the order the answers were recorded (those that move no child first: sheets.apply_answers), and the
    # chain holds.
    logged = list(AccessLog.objects.order_by("id").values_list("case_id", "action")[before:])
    recorded = ListAnswer.objects.filter(item__case_list=case_list).order_by("id")
    assert logged == [
        (answer.item.case_id, "edit" if answer.status_change_id is None else "status_change")
        for answer in recorded.select_related("item")
    ]
    kind_of = {case.pk: kinds[n % 3] for n, case in enumerate(cases)}
    assert sorted(logged) == sorted(
        (case_id, "edit" if kind == "under_verification" else "status_change") for case_id, kind in kind_of.items()
    )
    assert audit_chain.verify(AccessLog).intact


@pytest.mark.django_db(transaction=True)
def test_a_reader_is_not_held_up_while_a_sheet_records(ngo_a, qatar, supervisor, caseworker):
    """Two connections, as a worker recording a sheet and a web process serving a page: the page's append to the
    access log does not wait for the sheet's transaction (before, it waited until the sheet committed)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks between two connections: set DATABASE_URL (CI does)")
    cases, case_list, answers = located_sheet(ngo_a, qatar, by=supervisor, count=5)
    read(cases[0], caseworker)  # the chain has a head

    # Three answers recorded, in the sheet's open transaction.
    record = recording_paused(case_list, answers, by=supervisor, after=3)
    with Halfway(record):
        started = time.monotonic()
        read(cases[0], caseworker)  # a page view: autocommit, its own connection
        waited = time.monotonic() - started
    assert waited < 2.0, f"the page waited {waited:.1f} s for the sheet's transaction"
    assert AccessLog.objects.filter(action=AccessLog.Action.STATUS_CHANGE).count() == 5
    assert audit_chain.verify(AccessLog).intact
