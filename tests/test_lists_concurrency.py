"""An answer racing a status change on the same case, on PostgreSQL: no lost update."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Organisation
from casework import services as case_services
from casework.models import Case, Status, StatusChange
from partners.lists import services
from partners.models import ListAnswer
from tests.api_helpers import make_token
from tests.conftest import requires_postgres
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.list_helpers import sent_list

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(4))
def test_an_answer_and_a_status_change_on_the_same_case_lose_no_update(round_):
    organisation = OrganisationFactory(slug=f"ngo-race-{round_}")
    qatar = Organisation.objects.get(slug="qatar")
    supervisor = UserFactory(username=f"race-sup-{round_}", organisation=organisation, role="supervisor")
    case = CaseFactory(organisation=organisation, reported_on=dt.date(2023, 1, 10))
    made = sent_list(organisation, qatar, [case], by=supervisor, sent_on=dt.date(2024, 3, 1))
    token, _plain = make_token(qatar, "update")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def answer() -> None:
        try:
            barrier.wait(timeout=10)
            services.record_answer(
                case_list=made,
                case=case,
                answer="returned",
                answered_on=dt.date(2024, 6, 1),
                answerer=services.Answerer(token=token),
            )
            outcomes["answer"] = "recorded"
        except Exception as error:
            outcomes["answer"] = type(error).__name__
        finally:
            connection.close()

    def change() -> None:
        try:
            stale = Case.objects.get(pk=case.pk)
            barrier.wait(timeout=10)
            case_services.change_status(
                case=stale,
                actor=case_services.Actor.for_user(supervisor),
                to_status=Status.LOCATED,
                occurred_on=dt.date(2024, 5, 1),
                expected_version=stale.version,
            )
            outcomes["change"] = "won"
        except case_services.StaleVersion:
            outcomes["change"] = "conflict"
        except Exception as error:
            outcomes["change"] = type(error).__name__
        finally:
            connection.close()

    threads = [threading.Thread(target=answer), threading.Thread(target=change)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes["answer"] == "recorded"
    assert outcomes["change"] in {"won", "conflict"}
    case.refresh_from_db()
    history = list(StatusChange.objects.filter(case=case).order_by("version"))
    # Every write that succeeded is in the history, in version order, and the case is where the last one put it.
    assert [change.version for change in history] == list(range(2, 2 + len(history)))
    assert case.version == 1 + len(history)
    assert case.status == Status.REPATRIATED == history[-1].to_status
    expected = ["located", "repatriated"] if outcomes["change"] == "won" else ["repatriated"]
    assert [change.to_status for change in history] == expected
    returned = ListAnswer.objects.get(item__case=case)
    assert returned.status_change == history[-1]
    assert returned.status_change.via == qatar


@pytest.mark.skipif(not settings.MIGRATION_DATABASE, reason="needs PostgreSQL with two roles (CI)")
def test_the_applications_role_cannot_rewrite_or_erase_the_answer_trail():
    from django.db import DatabaseError, transaction

    organisation = OrganisationFactory(slug="ngo-trail")
    case = CaseFactory(organisation=organisation, reported_on=dt.date(2023, 1, 10))
    made = sent_list(organisation, Organisation.objects.get(slug="qatar"), [case], sent_on=dt.date(2024, 3, 1))
    services.record_answer(
        case_list=made,
        case=case,
        answer="received",
        answered_on=dt.date(2024, 3, 5),
        answerer=services.Answerer(command=True),
    )
    for statement in ("UPDATE partners_listanswer SET answer = 'returned'", "DELETE FROM partners_listanswer"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert ListAnswer.objects.get(item__case=case).answer == "received"
