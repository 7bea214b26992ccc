"""The list pages: lists per intermediary, composing, sending, closing, answers, waiting; who may do what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation, Role
from casework.models import AccessLog, Case, Status
from partners.lists import services
from partners.models import CaseList, ListAnswer, ListItem, ListState, Share
from tests.factories import CaseFactory, UserFactory
from tests.list_helpers import answer, sent_list

pytestmark = pytest.mark.django_db


def page_queries(queries) -> list[str]:
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


@pytest.fixture
def cases(ngo_a):
    return [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(4)]


@pytest.fixture
def qatar_list(ngo_a, qatar, supervisor, cases):
    return sent_list(ngo_a, qatar, cases[:3], by=supervisor, sent_on=dt.date(2024, 3, 1))


def test_it_lists_the_organisations_lists_per_intermediary_with_counts_by_latest_answer(
    client, caseworker, qatar_list, cases, ngo_b, qatar
):
    answer(qatar_list, cases[0], "located", dt.date(2024, 4, 1))
    answer(qatar_list, cases[1], "received", dt.date(2024, 4, 1))
    foreign_case = CaseFactory(organisation=ngo_b)
    foreign = sent_list(ngo_b, qatar, [foreign_case])
    client.force_login(caseworker)
    response = client.get("/lists/")
    assert response.status_code == 200
    [group] = response.context["groups"]
    assert group["intermediary"] == qatar
    [shown] = group["lists"]
    assert shown.pk == qatar_list.pk and shown.item_count == 3
    assert {value: count for value, _label, count in shown.answer_counts} == {"none": 1, "located": 1, "received": 1}
    assert f"/lists/{foreign.pk}/" not in response.text
    assert client.get(f"/lists/{foreign.pk}/").status_code == 404


def test_the_lists_pages_cost_as_many_queries_for_many_items_as_for_one(client, supervisor, ngo_a, qatar, cases):
    client.force_login(supervisor)
    one = sent_list(ngo_a, qatar, cases[:1], by=supervisor)
    many = sent_list(ngo_a, qatar, [CaseFactory(organisation=ngo_a) for _n in range(12)], by=supervisor)
    for item in ListItem.objects.filter(case_list__in=[one, many])[:5]:
        answer(item.case_list, item.case, "received", dt.date(2024, 4, 1))
    counts = {}
    for name, url in {"one": f"/lists/{one.pk}/", "many": f"/lists/{many.pk}/"}.items():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[name] = len(page_queries(queries))
    assert counts["one"] == counts["many"], counts
    with CaptureQueriesContext(connection) as few:
        client.get("/lists/")
    sent_list(ngo_a, Organisation.objects.get(slug="vatican"), cases[1:3], by=supervisor)
    with CaptureQueriesContext(connection) as more:
        client.get("/lists/")
    assert len(page_queries(few)) == len(page_queries(more))
    with CaptureQueriesContext(connection) as waiting:
        assert client.get("/lists/waiting/?days=30").status_code == 200
    assert len(page_queries(waiting)) <= 12, page_queries(waiting)


def test_the_list_page_filters_by_answer_and_logs_the_cases_shown(client, caseworker, qatar_list, cases):
    answer(qatar_list, cases[0], "refused", dt.date(2024, 4, 1))
    client.force_login(caseworker)
    response = client.get(f"/lists/{qatar_list.pk}/?answer=refused")
    assert [item.case for item in response.context["page"].object_list] == [cases[0]]
    unanswered = client.get(f"/lists/{qatar_list.pk}/?answer=none")
    assert {item.case for item in unanswered.context["page"].object_list} == set(cases[1:3])
    assert client.get(f"/lists/{qatar_list.pk}/?answer=bogus").status_code == 400
    logged = AccessLog.objects.filter(user=caseworker, action=AccessLog.Action.LIST)
    assert {cases[0].pk, cases[1].pk, cases[2].pk} <= set(logged.values_list("case_id", flat=True))


def test_a_supervisor_composes_sends_with_confirmation_and_closes(client, supervisor, qatar, cases):
    client.force_login(supervisor)
    response = client.post("/lists/new/", {"intermediary": qatar.slug, "note": "Second round"})
    made = CaseList.objects.get()
    assert response.status_code == 302 and made.state == ListState.DRAFT
    pasted = f"{cases[0].reference.lower()}, {cases[1].reference}\n{cases[2].reference}"
    assert client.post(f"/lists/{made.pk}/references/", {"references": pasted}).status_code == 302
    assert made.items.count() == 3
    assert client.post(f"/lists/{made.pk}/remove/", {"case": [cases[2].reference]}).status_code == 302
    assert made.items.count() == 2

    asked = client.post(f"/lists/{made.pk}/send/", {"sent_on": "2024-03-01"})
    assert asked.status_code == 200 and asked.context["confirming"]
    assert CaseList.objects.get(pk=made.pk).state == ListState.DRAFT  # nothing happens before the confirmation
    client.post(f"/lists/{made.pk}/send/", {"sent_on": "2024-03-01", "confirmed": "1"})
    made.refresh_from_db()
    assert (made.state, made.sent_on) == (ListState.SENT, dt.date(2024, 3, 1))
    assert Share.objects.active().filter(partner=qatar).count() == 2

    assert client.post(f"/lists/{made.pk}/close/").status_code == 200  # the confirmation page
    assert CaseList.objects.get(pk=made.pk).state == ListState.SENT
    client.post(f"/lists/{made.pk}/close/", {"confirmed": "1"})
    assert CaseList.objects.get(pk=made.pk).state == ListState.CLOSED
    assert not Share.objects.active().filter(partner=qatar).exists()


def test_pasted_references_are_all_or_nothing(client, supervisor, qatar, cases, ngo_b):
    client.force_login(supervisor)
    made = services.create_list(organisation=supervisor.organisation, intermediary=qatar, created_by=supervisor)
    foreign = CaseFactory(organisation=ngo_b)
    for pasted in (f"{cases[0].reference} {foreign.reference}", f"{cases[0].reference} not-a-ref", ""):
        response = client.post(f"/lists/{made.pk}/references/", {"references": pasted})
        assert response.status_code == 400
    assert not made.items.exists()


def test_a_bad_sending_date_is_refused_and_nothing_is_sent(client, supervisor, qatar, cases):
    client.force_login(supervisor)
    made = services.create_list(
        organisation=supervisor.organisation, intermediary=qatar, created_by=supervisor, cases=cases
    )
    for date in ("2999-01-01", "not a date", ""):
        response = client.post(f"/lists/{made.pk}/send/", {"sent_on": date, "confirmed": "1"})
        assert response.status_code == 400
    assert CaseList.objects.get(pk=made.pk).state == ListState.DRAFT


def test_only_supervisors_of_the_sending_organisation_compose_send_or_close(
    client, caseworker, org_admin, analyst, qatar_list, qatar, ngo_b, cases
):
    draft = services.create_list(organisation=caseworker.organisation, intermediary=qatar, created_by=None)
    other_supervisor = UserFactory(username="sup-b", organisation=ngo_b, role=Role.SUPERVISOR)
    for user in (caseworker, org_admin):
        client.force_login(user)
        assert client.post("/lists/new/", {"intermediary": qatar.slug}).status_code == 403
        assert client.post(f"/lists/{draft.pk}/references/", {"references": cases[3].reference}).status_code == 403
        assert client.post(f"/lists/{draft.pk}/send/", {"sent_on": "2024-03-01", "confirmed": "1"}).status_code == 403
        assert client.post(f"/lists/{qatar_list.pk}/close/", {"confirmed": "1"}).status_code == 403
        assert client.post("/lists/add/", {"mode": "selected", "case": [cases[3].reference]}).status_code == 403
    client.force_login(analyst)
    assert client.get("/lists/").status_code == 403
    client.force_login(other_supervisor)
    assert client.get(f"/lists/{qatar_list.pk}/").status_code == 404
    assert client.post(f"/lists/{qatar_list.pk}/close/", {"confirmed": "1"}).status_code == 404
    assert client.post(f"/lists/{draft.pk}/send/", {"sent_on": "2024-03-01", "confirmed": "1"}).status_code == 404
    assert CaseList.objects.get(pk=draft.pk).state == ListState.DRAFT
    assert CaseList.objects.get(pk=qatar_list.pk).state == ListState.SENT
    assert CaseList.objects.count() == 2


def test_a_caseworker_records_an_answer_that_moves_the_case(client, caseworker, qatar_list, cases, qatar):
    client.force_login(caseworker)
    url = f"/lists/{qatar_list.pk}/items/{cases[0].reference}/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"answer": "returned", "answered_on": "2024-05-02", "note": "Back in Kyiv oblast"})
    assert response.status_code == 302
    case = Case.objects.get(pk=cases[0].pk)
    assert case.status == Status.REPATRIATED
    assert case.status_changes.get().via == qatar
    detail = client.get(f"/cases/{case.reference}/")
    assert "Back in Kyiv oblast" in detail.text  # the answer on the case's page
    bad = client.post(url, {"answer": "located", "answered_on": "2024-01-01"})  # before the list was sent
    assert bad.status_code == 400
    assert ListAnswer.objects.count() == 1


def test_answers_are_refused_on_a_closed_list_and_to_an_analyst(client, supervisor, analyst, qatar_list, cases):
    services.close_list(case_list=qatar_list, by=supervisor)
    client.force_login(supervisor)
    url = f"/lists/{qatar_list.pk}/items/{cases[0].reference}/"
    response = client.post(url, {"answer": "located", "answered_on": "2024-05-02"})
    assert response.status_code == 302
    client.force_login(analyst)
    assert client.post(url, {"answer": "located", "answered_on": "2024-05-02"}).status_code == 403
    assert not ListAnswer.objects.exists()


def test_the_waiting_view_shows_items_without_an_answer_for_so_many_days(client, caseworker, ngo_a, qatar, cases):
    today = dt.date.today()
    old = sent_list(ngo_a, qatar, cases[:2], sent_on=today - dt.timedelta(days=95))
    sent_list(ngo_a, qatar, cases[2:3], sent_on=today - dt.timedelta(days=40))
    answer(old, cases[0], "received", today - dt.timedelta(days=10))
    client.force_login(caseworker)
    ninety = client.get("/lists/waiting/?days=90")
    assert [item.case for item in ninety.context["page"].object_list] == [cases[1]]
    thirty = client.get("/lists/waiting/?days=30")
    assert {item.case for item in thirty.context["page"].object_list} == {cases[1], cases[2]}
    assert client.get("/lists/waiting/?days=banana").status_code == 200


def test_ticked_cases_and_filtered_cases_after_a_confirmed_count_go_on_a_list(client, supervisor, qatar, cases):
    client.force_login(supervisor)
    response = client.post(
        "/lists/add/", {"mode": "selected", "case": [cases[0].reference], "target": f"new-{qatar.slug}"}
    )
    assert response.status_code == 302
    made = CaseList.objects.get()
    assert list(made.items.values_list("case_id", flat=True)) == [cases[0].pk]
    preview = client.post("/lists/add/", {"mode": "filter", "filter": "", "target": f"list-{made.pk}"})
    assert preview.status_code == 200 and preview.context["count"] == 4
    changed = client.post("/lists/add/", {"mode": "filter", "filter": "", "target": f"list-{made.pk}", "expected": "3"})
    assert changed.status_code == 409
    assert made.items.count() == 1
    client.post("/lists/add/", {"mode": "filter", "filter": "", "target": f"list-{made.pk}", "expected": "4"})
    assert made.items.count() == 4
    wrong_target = client.post("/lists/add/", {"mode": "selected", "case": [cases[0].reference], "target": "list-999"})
    assert wrong_target.status_code == 400


def test_the_case_list_offers_the_list_form_to_supervisors_only(client, supervisor, caseworker, cases):
    client.force_login(supervisor)
    assert "lists" in [shown.name for shown in client.get("/cases/").context["sections"]]
    client.force_login(caseworker)
    assert "lists" not in [shown.name for shown in client.get("/cases/").context["sections"]]


def test_the_pages_are_in_ukrainian(client, caseworker, qatar_list):
    client.force_login(caseworker)
    client.cookies["django_language"] = "uk"
    response = client.get(f"/lists/{qatar_list.pk}/", HTTP_ACCEPT_LANGUAGE="uk")
    assert "Діти у списку" in response.text
