"""Shared set-up for the tests of lists to intermediaries. All data is synthetic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation, User
from casework.models import Case
from partners.lists import services, sheets
from partners.models import CaseList, ListAnswer
from tests.factories import CaseFactory


def sent_list(
    organisation: Organisation,
    intermediary: Organisation,
    cases: list[Case],
    *,
    by: User | None = None,
    sent_on: dt.date = dt.date(2024, 3, 1),
) -> CaseList:
    made = services.create_list(organisation=organisation, intermediary=intermediary, created_by=by, cases=cases)
    return services.send_list(case_list=made, sent_on=sent_on, by=by)


def answer(case_list: CaseList, case: Case, kind: str, on: dt.date, *, user: User | None = None, token=None):
    answerer = services.Answerer(user=user, token=token, command=user is None and token is None)
    return services.record_answer(case_list=case_list, case=case, answer=kind, answered_on=on, answerer=answerer)


def located_sheet(
    organisation: Organisation, intermediary: Organisation, *, by: User, count: int
) -> tuple[list[Case], CaseList, list[sheets.SheetAnswer]]:
    """``count`` cases on a list sent to ``intermediary``, and an answered sheet saying each was located."""
    cases = [CaseFactory(organisation=organisation, reported_on=dt.date(2023, 1, 10)) for _n in range(count)]
    case_list = sent_list(organisation, intermediary, cases, by=by, sent_on=dt.date(2024, 3, 1))
    answers = [
        sheets.SheetAnswer(
            line=n + 2, reference=case.reference, answer="located", answered_on=dt.date(2024, 6, 1), note=""
        )
        for n, case in enumerate(cases)
    ]
    return cases, case_list, answers


def recording_paused(
    case_list: CaseList, answers: list[sheets.SheetAnswer], *, by: User, after: int
) -> Callable[[Callable[[], None]], None]:
    """A sheet's recording (for ``thread_helpers.Halfway``) that pauses, in its open transaction, once ``after``
    answers are recorded."""

    def record(pause: Callable[[], None]) -> None:
        def progress(done: int) -> None:
            if done == after + 1:
                pause()

        answerer = services.Answerer(user=by, token=None, command=False)
        sheets.apply_answers(
            name="answers.csv", case_list=case_list, answers=answers, answerer=answerer, progress=progress
        )

    return record


def record_given(
    case_list: CaseList, cases: list[Case], given: list[tuple[int, str, dt.date]], *, by: User
) -> tuple[list[ListAnswer], list[str]]:
    """A sheet of ``given`` answers (the case's index in ``cases``, the answer, its date), one a line, recorded by
    ``by``: the answers made and the SQL of the recording, in order."""
    answers = [
        sheets.SheetAnswer(line=n + 2, reference=cases[at].reference, answer=kind, answered_on=on, note="")
        for n, (at, kind, on) in enumerate(given)
    ]
    answerer = services.Answerer(user=by, token=None, command=False)
    with CaptureQueriesContext(connection) as queries:
        made = sheets.apply_answers(name="answers.csv", case_list=case_list, answers=answers, answerer=answerer)
    return made, [query["sql"] for query in queries.captured_queries]
