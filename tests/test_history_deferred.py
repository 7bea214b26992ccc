"""A long transaction keeps its status changes until its end (casework.services.deferred_history), so that the
status history's chain head, which every status change in the register locks to append, is not held while it
works: an answered sheet moving hundreds of children is the one that needs it. Before, the sheet held the head
from its first move to its commit (16.7 s for 1,000 answers that each moved a child), and a caseworker's status
change meanwhile waited, or was refused as busy."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from casework import audit_chain, services, signals
from casework.models import Case, Status, StatusChange, StatusEvent
from casework.task_models import Task, TaskKind
from partners.lists import services as list_services
from partners.lists import sheets
from partners.models import ListAnswer, ListEvent, ListItem
from tests.factories import CaseFactory
from tests.list_helpers import located_sheet, record_given, recording_paused, sent_list
from tests.thread_helpers import Halfway, locks_the_history, without_waiting

pytestmark = pytest.mark.django_db


def move(case: Case, user, to: str, on: dt.date) -> StatusChange:
    case.refresh_from_db()
    return services.change_status(
        case=case,
        actor=services.Actor.for_user(user),
        to_status=to,
        occurred_on=on,
        expected_version=case.version,
    )


def test_the_changes_are_written_at_the_end_of_the_block_in_order_and_chained(
    ngo_a, caseworker, django_capture_on_commit_callbacks
):
    first, second = (CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(2))
    move(first, caseworker, Status.VERIFIED, dt.date(2023, 2, 1))  # the chain has a head before
    sent: list[int] = []

    def heard(sender, change_id: int, **kwargs) -> None:
        sent.append(change_id)

    signals.status_change_recorded.connect(heard, dispatch_uid="test.deferred.heard")
    try:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            with CaptureQueriesContext(connection) as inside, services.deferred_history():
                made = [
                    move(first, caseworker, Status.LOCATED, dt.date(2023, 3, 1)),
                    move(second, caseworker, Status.VERIFIED, dt.date(2023, 2, 2)),
                    move(first, caseworker, Status.RETURN_REQUESTED, dt.date(2023, 4, 1)),
                ]
                assert [change.pk for change in made] == [None, None, None]
                # The cases moved at once (they are locked); the history waits.
                written_inside = StatusChange.objects.count()
                assert Case.objects.get(pk=first.pk).status == Status.RETURN_REQUESTED
            assert written_inside == 1
            during = [query["sql"] for query in inside.captured_queries]
            locked = next(n for n, sql in enumerate(during) if locks_the_history(sql))
            last_case_update = max(n for n, sql in enumerate(during) if sql.startswith('UPDATE "casework_case"'))
            assert last_case_update < locked
            assert sent == []  # the signal waits for the commit
    finally:
        signals.status_change_recorded.disconnect(dispatch_uid="test.deferred.heard")
    rows = list(StatusChange.objects.order_by("id").values_list("pk", "case_id", "to_status", "version")[1:])
    assert [row[1:] for row in rows] == [
        (first.pk, Status.LOCATED, 3),
        (second.pk, Status.VERIFIED, 2),
        (first.pk, Status.RETURN_REQUESTED, 4),
    ]
    assert [change.pk for change in made] == [row[0] for row in rows]
    assert set(StatusEvent.objects.values_list("status_change_id", flat=True)) >= {row[0] for row in rows}
    assert sent == [row[0] for row in rows]  # after the commit, one each, in order
    assert audit_chain.verify(StatusChange).intact


def test_a_move_dated_before_one_waiting_in_the_block_is_refused_as_it_would_be_alone(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    with pytest.raises(ValidationError) as refused, transaction.atomic(), services.deferred_history():
        move(case, caseworker, Status.VERIFIED, dt.date(2023, 3, 1))
        move(case, caseworker, Status.LOCATED, dt.date(2023, 2, 1))
    assert "occurred_on" in refused.value.message_dict
    # The same two moves, one by one, are refused the same way.
    move(case, caseworker, Status.VERIFIED, dt.date(2023, 3, 1))
    with pytest.raises(ValidationError) as alone:
        move(case, caseworker, Status.LOCATED, dt.date(2023, 2, 1))
    assert alone.value.message_dict == refused.value.message_dict


def review(case: Case) -> Task:
    return Task(case=case, kind=TaskKind.REVIEW_IDLE, due_on=dt.date(2024, 7, 1))


def test_a_block_that_raises_writes_nothing_and_later_changes_are_written_at_once(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    with pytest.raises(ZeroDivisionError), transaction.atomic(), services.deferred_history():
        move(case, caseworker, Status.VERIFIED, dt.date(2023, 2, 1))
        services.insert_after_history(review(case))
        raise ZeroDivisionError
    assert not StatusChange.objects.exists() and not Task.objects.filter(kind=TaskKind.REVIEW_IDLE).exists()
    assert Case.objects.get(pk=case.pk).status == Status.REPORTED
    change = move(case, caseworker, Status.VERIFIED, dt.date(2023, 2, 1))
    assert change.pk is not None and StatusEvent.objects.filter(status_change=change).exists()
    # Outside a block, or with no change waiting, a row handed to insert_after_history is inserted at once.
    task = review(case)
    services.insert_after_history(task)
    assert task.pk is not None
    with transaction.atomic(), services.deferred_history():
        early = review(CaseFactory(organisation=ngo_a))
        services.insert_after_history(early)
        assert early.pk is not None


def test_blocks_nest_and_the_outermost_writes_the_changes_then_the_rows_that_wait(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    with transaction.atomic(), services.deferred_history():
        with services.deferred_history():
            move(case, caseworker, Status.VERIFIED, dt.date(2023, 2, 1))
            first, second = review(case), review(CaseFactory(organisation=ngo_a))
            services.insert_after_history(first, second)
        assert not StatusChange.objects.exists() and first.pk is None
    assert StatusChange.objects.count() == 1
    assert first.pk is not None and second.pk is not None and first.pk < second.pk
    assert audit_chain.verify(StatusChange).intact


def test_outside_a_transaction_it_refuses(monkeypatch):
    monkeypatch.setattr(services, "connection", SimpleNamespace(in_atomic_block=False))
    with pytest.raises(RuntimeError, match="inside the transaction"), services.deferred_history():
        pass


def test_a_sheet_locks_the_history_only_after_its_last_move_and_keeps_each_trail_in_order(ngo_a, qatar, supervisor):
    cases = [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(4)]
    case_list = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    given = [
        (0, "not_found", dt.date(2024, 6, 20)),
        (1, "returned", dt.date(2024, 6, 2)),
        (1, "located", dt.date(2024, 5, 2)),
        (2, "located", dt.date(2024, 5, 3)),
        (2, "not_found", dt.date(2024, 6, 3)),  # recorded after a move: it waits with it
        (3, "received", dt.date(2024, 5, 1)),
        (3, "located", dt.date(2024, 6, 1)),
    ]
    made, sql = record_given(case_list, cases, given, by=supervisor)
    locked = [n for n, text in enumerate(sql) if locks_the_history(text)]
    moved = [n for n, text in enumerate(sql) if text.startswith('UPDATE "casework_case"')]
    assert len(locked) == 1 and len(moved) == 4
    assert max(moved) < locked[0]
    # The history's rows in one statement under the head, whatever the number of moves.
    inserts = [n for n, text in enumerate(sql) if text.startswith('INSERT INTO "casework_statuschange"')]
    assert len(inserts) == 1 and inserts[0] > locked[0]
    assert all(answer.pk is not None for answer in made) and len(made) == 7
    statuses = [Case.objects.get(pk=case.pk).status for case in cases]
    assert statuses == ["reported", "repatriated", "located", "located"]
    # Each child's trail in date order, each moving answer naming its own change (with its outbox row).
    for case in cases:
        trail = list(ListAnswer.objects.filter(item__case=case).order_by("id"))
        assert [answer.answered_on for answer in trail] == sorted(answer.answered_on for answer in trail)
        for answer in trail:
            if answer.answer in list_services.STATUS_OF_ANSWER:
                change = answer.status_change
                assert change is not None and change.case_id == case.pk and change.occurred_on == answer.answered_on
                assert StatusEvent.objects.filter(status_change=change).exists()
            else:
                assert answer.status_change_id is None
    assert ListItem.objects.get(case_list=case_list, case=cases[2]).latest_answer == "not_found"
    assert ListEvent.objects.filter(answer__item__case_list=case_list).count() == 7
    assert audit_chain.verify(StatusChange).intact


def test_a_dry_run_writes_and_rolls_back_everything(ngo_a, qatar, supervisor):
    cases, case_list, answers = located_sheet(ngo_a, qatar, by=supervisor, count=3)
    before = StatusChange.objects.count(), ListAnswer.objects.count()
    answerer = list_services.Answerer(user=supervisor, token=None, command=False)
    with CaptureQueriesContext(connection) as queries:
        made = sheets.apply_answers(
            name="answers.csv", case_list=case_list, answers=answers, answerer=answerer, dry_run=True
        )
    assert len(made) == 3
    # The database saw the rows (and checked them) before the rollback.
    assert any(query["sql"].startswith('INSERT INTO "casework_statuschange"') for query in queries.captured_queries)
    assert (StatusChange.objects.count(), ListAnswer.objects.count()) == before
    assert {case.status for case in Case.objects.filter(pk__in=[case.pk for case in cases])} == {Status.REPORTED}


@pytest.mark.django_db(transaction=True)
def test_a_caseworker_moves_a_case_at_once_while_a_sheet_records(ngo_a, qatar, supervisor, caseworker):
    """Two connections, a worker recording a sheet and a caseworker saving a status change: the caseworker's
    append to the history does not wait for the sheet's transaction (before, it waited until the sheet
    committed, up to the web's lock limit, and was then refused as busy)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks between two connections: set DATABASE_URL (CI does)")
    cases, case_list, answers = located_sheet(ngo_a, qatar, by=supervisor, count=4)
    own = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))

    # Two answers recorded (two children moved), in the sheet's open transaction.
    record = recording_paused(case_list, answers, by=supervisor, after=2)
    with Halfway(record):
        started = time.monotonic()
        without_waiting(lambda: move(own, caseworker, Status.VERIFIED, dt.date(2023, 2, 1)))
        waited = time.monotonic() - started
    assert waited < 2.0, f"the status change waited {waited:.1f} s for the sheet's transaction"
    assert Case.objects.get(pk=own.pk).status == Status.VERIFIED
    assert [case.status for case in Case.objects.filter(pk__in=[case.pk for case in cases])] == [Status.LOCATED] * 4
    # The caseworker's change came first in the chain, the sheet's four after it.
    assert list(StatusChange.objects.order_by("id").values_list("case_id", flat=True))[-5:] == [
        own.pk,
        *sorted(case.pk for case in cases),
    ]
    assert audit_chain.verify(StatusChange).intact
