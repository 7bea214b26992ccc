"""Concurrent stale writes on PostgreSQL: one wins, the other gets the conflict."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from casework import services
from casework.models import Case, StatusChange
from tests.conftest import requires_postgres
from tests.factories import CaseFactory, OrganisationFactory, UserFactory

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_it_lets_one_of_two_concurrent_writes_win():
    organisation = OrganisationFactory(slug="ngo-race")
    users = [UserFactory(username=f"race-{n}", organisation=organisation, role="supervisor") for n in range(2)]
    case = CaseFactory(organisation=organisation, reported_on=dt.date(2023, 1, 10))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    targets = ["located", "withdrawn"]

    def write(index: int) -> None:
        try:
            stale = Case.objects.get(pk=case.pk)
            barrier.wait(timeout=10)
            services.change_status(
                case=stale,
                actor=services.Actor.for_user(users[index]),
                to_status=targets[index],
                occurred_on=dt.date(2023, 2, 1),
                expected_version=1,
                note="Found to be a mistaken report.",
            )
            outcomes.append("won")
        except services.StaleVersion:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["conflict", "won"]
    case.refresh_from_db()
    history = list(StatusChange.objects.filter(case=case))
    assert len(history) == 1
    assert case.version == 2
    assert case.status == history[0].to_status
