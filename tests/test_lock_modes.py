"""Long writers lock what they serialise on FOR NO KEY UPDATE, and only that row: other writers of the same thing
still wait, but a row that merely refers to it (a new case of the organisation, a task on a case, another
organisation's list to the same intermediary) checks its foreign key at once. PostgreSQL's foreign key checks
take FOR KEY SHARE, which FOR UPDATE blocks and FOR NO KEY UPDATE does not. Before, an import blocked every new
case of its organisation until it committed, and an answered sheet blocked, until its commit, every other list
to its intermediary and every row referring to a case it had moved."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.models import Organisation
from casework.importing import apply_import, plan_import
from casework.models import Case
from casework.task_models import Task, TaskKind
from partners.lists import services
from partners.models import CaseList
from tests.factories import CaseFactory
from tests.list_helpers import located_sheet, recording_paused
from tests.test_import_streaming import TODAY, write_files
from tests.thread_helpers import Halfway, without_waiting

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks between two connections: set DATABASE_URL (CI does)")


def locked_for_another(queryset) -> bool:
    """Whether another writer taking the same lock would wait (NOWAIT refuses at once)."""
    try:
        with transaction.atomic():
            list(queryset.select_for_update(no_key=True, nowait=True).values_list("pk"))
    except DatabaseError:
        return True
    return False


class _Pausing:
    """An import's progress hook that pauses in the middle of the writing, inside its transaction."""

    def __init__(self, pause: Callable[[], None]) -> None:
        self.pause, self.writing = pause, False

    def start(self, *, total: int, desc: str) -> None:
        self.writing = desc != "Checking"

    def update(self, count: int) -> None:
        if self.writing:
            self.pause()


def test_an_import_lets_its_organisation_add_cases_and_still_keeps_other_imports_out(
    tmp_path: Path, ngo_a: Organisation
) -> None:
    cases_file, events_file = write_files(tmp_path, 30)

    def run_import(pause: Callable[[], None]) -> None:
        progress = _Pausing(pause)
        plan = plan_import(cases_file=cases_file, events_file=events_file, organisation=ngo_a, today=TODAY)
        apply_import(plan, progress=progress)

    with Halfway(run_import):
        # A caseworker of the organisation saves a new case: its foreign key to the organisation is checked.
        without_waiting(lambda: CaseFactory(organisation=ngo_a))
        # A second import of the organisation still waits for the first.
        assert locked_for_another(Organisation.objects.filter(pk=ngo_a.pk))
    assert Case.objects.filter(organisation=ngo_a).count() == 31


def test_a_sheet_being_recorded_holds_up_neither_other_lists_to_its_intermediary_nor_rows_on_its_cases(
    ngo_a: Organisation, ngo_b: Organisation, qatar: Organisation, supervisor
) -> None:
    cases, case_list, answers = located_sheet(ngo_a, qatar, by=supervisor, count=4)
    other = CaseFactory(organisation=ngo_b, reported_on=dt.date(2023, 1, 10))

    # Two answers recorded (two cases moved), in the sheet's open transaction.
    record = recording_paused(case_list, answers, by=supervisor, after=2)
    with Halfway(record):
        # Another organisation composes a list to the same intermediary (a foreign key to it).
        without_waiting(
            lambda: services.create_list(organisation=ngo_b, intermediary=qatar, created_by=None, cases=[other])
        )
        # A task on a case the sheet has moved (a foreign key to the case).
        without_waiting(
            lambda: Task.objects.create(case=cases[0], kind=TaskKind.REVIEW_IDLE, due_on=dt.date(2024, 7, 1))
        )
        # Another recorder of the same list, or of the same case's status, still waits.
        assert locked_for_another(CaseList.objects.filter(pk=case_list.pk))
        assert locked_for_another(Case.objects.filter(pk=cases[0].pk))
    assert (
        sorted(Case.objects.filter(pk__in=[case.pk for case in cases]).values_list("status", flat=True))
        == ["located"] * 4
    )
    assert CaseList.objects.filter(organisation=ngo_b, intermediary=qatar).count() == 1
