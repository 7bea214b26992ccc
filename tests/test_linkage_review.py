"""Reviewing pairs: who may (only the host's supervisors across organisations, 404 for the rest), decisions
and their reversal, what an organisation sees of a link, the access log, bad input, and query counts.

Every name is invented (no real child is named so).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from casework import services as case_services
from casework.identifying import IdentifyingDetails, PartialDate
from casework.models import AccessLog, Case, Status, StatusChange
from linkage import selectors, services
from linkage.models import Candidate, Decision, LinkDecision
from tests.conftest import requires_postgres, requires_two_roles
from tests.factories import CaseFactory, UserFactory

CHILD = IdentifyingDetails(
    given_name="Олександр",
    family_name="Вигаданенко",
    patronymic="Андрійович",
    birth_date=PartialDate(2012, 3, 7),
    birth_place="м. Маріуполь",
)
SAME_CHILD_IN_RUSSIAN = IdentifyingDetails(
    given_name="Александр",
    family_name="Выгаданенко",
    patronymic="Андреевич",
    birth_date=PartialDate(2012, 7, 3),
    birth_place="г. Мариуполь",
)
OTHER_CHILD = IdentifyingDetails(
    given_name="Соломія", family_name="Придуманська", birth_date=PartialDate(2015, 10, 2), birth_place="Херсон"
)
OTHER_CHILD_AGAIN = IdentifyingDetails(
    given_name="Solomiia", family_name="Prydumanska", birth_date=PartialDate(2015, 10, 2), birth_place="Kherson"
)


def encoded_case(organisation, details: IdentifyingDetails, **fields) -> Case:
    case = CaseFactory(organisation=organisation, sex="M", oblast="UA-14", **fields)
    services.receive_case_details(case, details)
    return case


def pair_of(first: Case, second: Case) -> Candidate:
    services.match_cases([first.pk, second.pk])
    a, b = sorted((first.pk, second.pk))
    return Candidate.objects.get(case_a_id=a, case_b_id=b)


@pytest.fixture
def host(ngo_a):
    ngo_a.is_host = True
    ngo_a.save()
    return ngo_a


@pytest.fixture
def host_supervisor(host):
    return UserFactory(username="host-supervisor", organisation=host, role=Role.SUPERVISOR)


@pytest.fixture
def supervisor_b(ngo_b):
    return UserFactory(username="supervisor-b", organisation=ngo_b, role=Role.SUPERVISOR)


@pytest.fixture
def across(host, ngo_b) -> Candidate:
    return pair_of(encoded_case(host, CHILD), encoded_case(ngo_b, SAME_CHILD_IN_RUSSIAN))


@pytest.fixture
def within(ngo_b) -> Candidate:
    first = encoded_case(ngo_b, OTHER_CHILD, reported_on=dt.date(2023, 1, 10))
    return pair_of(first, encoded_case(ngo_b, OTHER_CHILD_AGAIN, reported_on=dt.date(2023, 2, 10)))


def test_the_same_child_spelt_in_russian_is_a_candidate_across_organisations(across):
    assert across.across_organisations and across.score > 0.9 and across.decision == ""


def everyone_but_the_hosts_supervisors(host, ngo_b):
    users = [
        UserFactory(username=f"{role}-{organisation.slug}", organisation=organisation, role=role)
        for organisation in (host, ngo_b)
        for role in (Role.CASEWORKER, Role.ANALYST, Role.ORG_ADMIN)
    ]
    users.append(UserFactory(username="supervisor-of-b", organisation=ngo_b, role=Role.SUPERVISOR))
    users.append(
        UserFactory(username="root", organisation=ngo_b, role=Role.ORG_ADMIN, is_superuser=True, is_staff=True)
    )
    users.append(UserFactory(username="staff-a", organisation=host, role=Role.CASEWORKER, is_staff=True))
    return users


def test_only_the_hosts_supervisors_review_pairs_across_organisations_404_for_the_rest(
    client, across, host, ngo_b, host_supervisor
):
    for user in everyone_but_the_hosts_supervisors(host, ngo_b):
        client.force_login(user)
        page = client.get(f"/links/{across.pk}/")
        decided = client.post(f"/links/{across.pk}/decide/", {"decision": "same", "expected": ""})
        listed = client.get("/links/?queue=across")
        assert (page.status_code, decided.status_code, listed.status_code) == (404, 404, 404), user.username
        assert across.case_a.reference not in listed.text + page.text
    assert not LinkDecision.objects.exists()
    assert not AccessLog.objects.filter(action=AccessLog.Action.VIEW).exists()
    client.force_login(host_supervisor)
    assert client.get(f"/links/{across.pk}/").status_code == 200
    assert client.get("/links/?queue=across").status_code == 200


def test_a_pair_that_does_not_exist_is_the_same_404(client, host_supervisor):
    client.force_login(host_supervisor)
    for pk in ("987654", "0", "99999999999999999999999", "9223372036854775808"):
        assert client.get(f"/links/{pk}/").status_code == 404, pk
        assert client.post(f"/links/{pk}/decide/", {"decision": "same"}).status_code == 404, pk
    assert client.get("/links/abc/").status_code == 404


def test_an_organisations_supervisor_reviews_its_own_pairs_only(client, across, within, supervisor_b, host_supervisor):
    client.force_login(supervisor_b)
    page = client.get("/links/")
    assert page.status_code == 200 and page.context["queue"] == "within"
    assert [pair.pk for pair in page.context["pairs"]] == [within.pk]
    assert client.get(f"/links/{within.pk}/").status_code == 200
    # The host's supervisors review across organisations, not inside NGO B.
    client.force_login(host_supervisor)
    assert client.get(f"/links/{within.pk}/").status_code == 404
    assert client.get("/links/?queue=within").context["pairs"] == []  # the host's own pairs: none
    assert [pair.pk for pair in client.get("/links/").context["pairs"]] == [across.pk]


def test_a_pair_is_shown_with_anonymised_facts_and_agreements_never_notes(client, across, host_supervisor):
    Case.objects.filter(pk=across.case_b_id).update(notes="Seen at the sanatorium gate by a volunteer.")
    client.force_login(host_supervisor)
    response = client.get(f"/links/{across.pk}/")
    assert response.status_code == 200
    text = response.text
    assert across.case_a.reference in text and across.case_b.reference in text
    assert "sanatorium gate" not in text
    levels = [agreement.level for agreement in response.context["agreements"]]
    assert levels[0] == "same" and levels[3] in {"same", "close"}  # the date, day and month exchanged
    rows = AccessLog.objects.filter(action=AccessLog.Action.VIEW, user=host_supervisor)
    assert sorted(rows.values_list("case_id", flat=True)) == sorted([across.case_a_id, across.case_b_id])
    assert set(rows.values_list("organisation_id", flat=True)) == {host_supervisor.organisation_id}


def test_a_decision_is_logged_and_reversed_by_a_later_one(client, across, host_supervisor):
    client.force_login(host_supervisor)
    response = client.post(f"/links/{across.pk}/decide/", {"decision": "same", "expected": ""})
    assert response.status_code == 302
    across.refresh_from_db()
    assert across.decision == Decision.SAME
    assert selectors.confirmed_groups() == [sorted([across.case_a_id, across.case_b_id])]

    response = client.post(f"/links/{across.pk}/decide/", {"decision": "different", "expected": "same"})
    assert response.status_code == 302
    across.refresh_from_db()
    assert across.decision == Decision.DIFFERENT
    assert selectors.confirmed_groups() == []
    trail = list(LinkDecision.objects.filter(candidate=across).values_list("decision", "decided_by", "organisation"))
    organisation = host_supervisor.organisation_id
    assert trail == [("same", host_supervisor.pk, organisation), ("different", host_supervisor.pk, organisation)]
    logged = AccessLog.objects.filter(action=AccessLog.Action.LINK).values_list("case_id", flat=True)
    assert sorted(logged) == sorted([across.case_a_id, across.case_b_id] * 2)
    # The statuses of cases of two organisations are never touched by a decision.
    assert not StatusChange.objects.exists()


def test_a_decision_on_a_pair_decided_meanwhile_is_refused(client, across, host_supervisor):
    client.force_login(host_supervisor)
    client.post(f"/links/{across.pk}/decide/", {"decision": "same", "expected": ""})
    stale = client.post(f"/links/{across.pk}/decide/", {"decision": "different", "expected": ""})
    assert stale.status_code == 400
    assert "Another reviewer decided this pair meanwhile" in stale.text
    again = client.post(f"/links/{across.pk}/decide/", {"decision": "same", "expected": "same"})
    assert again.status_code == 400 and "already decided so" in again.text
    assert LinkDecision.objects.count() == 1


@pytest.mark.parametrize(
    "data", [{}, {"decision": "maybe"}, {"decision": "same", "expected": "perhaps"}, {"decision": "same" * 100}]
)
def test_bad_decision_input_is_a_clear_400_and_changes_nothing(client, across, host_supervisor, data):
    client.force_login(host_supervisor)
    response = client.post(f"/links/{across.pk}/decide/", data)
    assert response.status_code == 400
    assert "errorlist" in response.text
    assert not LinkDecision.objects.exists()


@pytest.mark.parametrize("query", ["state=bogus", "queue=everything", "page=abc", "page=0", "page=99999999999"])
def test_a_bad_query_string_is_a_400(client, across, host_supervisor, query):
    client.force_login(host_supervisor)
    response = client.get(f"/links/?{query}")
    assert response.status_code == 400
    assert "does not exist" in response.text


def test_same_child_within_an_organisation_marks_the_duplicate_and_a_reversal_says_what_is_left(
    client, within, supervisor_b
):
    client.force_login(supervisor_b)
    missing = client.post(f"/links/{within.pk}/decide/", {"decision": "same", "expected": ""})
    assert missing.status_code == 400 and "Choose the case that remains" in missing.text
    outsider = CaseFactory(organisation=within.case_a.organisation).pk
    wrong = client.post(f"/links/{within.pk}/decide/", {"decision": "same", "expected": "", "survivor": outsider})
    assert wrong.status_code == 400 and not LinkDecision.objects.exists()

    response = client.post(
        f"/links/{within.pk}/decide/", {"decision": "same", "expected": "", "survivor": within.case_a_id}
    )
    assert response.status_code == 302
    duplicate = Case.objects.get(pk=within.case_b_id)
    change = StatusChange.objects.get(case=duplicate)
    assert (duplicate.status, change.duplicate_of_id, change.recorded_by) == (
        Status.DUPLICATE,
        within.case_a_id,
        supervisor_b,
    )
    # Closed as a duplicate: the pair no longer waits in the queue.
    assert not selectors.review_pairs(supervisor_b, across=False).exists()

    reversed_ = client.post(f"/links/{within.pk}/decide/", {"decision": "different", "expected": "same"}, follow=True)
    assert "is still marked a duplicate" in reversed_.text
    assert Case.objects.get(pk=duplicate.pk).status == Status.DUPLICATE


def test_an_organisation_sees_its_case_is_linked_never_the_other_case(client, across, host_supervisor, ngo_b):
    client.force_login(host_supervisor)
    client.post(f"/links/{across.pk}/decide/", {"decision": "same", "expected": ""})
    caseworker_b = UserFactory(username="cw-b", organisation=ngo_b, role=Role.CASEWORKER)
    client = Client()  # another person, another browser
    client.force_login(caseworker_b)
    page = client.get(f"/cases/{across.case_b.reference}/")
    assert page.status_code == 200
    assert "Linked" in page.text and "count this child once" in page.text
    assert across.case_a.reference not in page.text
    assert across.case_a.organisation.display_name not in page.text.replace(caseworker_b.organisation.name, "")
    assert client.get(f"/cases/{across.case_a.reference}/").status_code == 404


def test_a_supervisor_sees_the_possible_duplicates_of_a_case_on_its_page(client, within, supervisor_b, ngo_b):
    client.force_login(supervisor_b)
    page = client.get(f"/cases/{within.case_a.reference}/")
    assert within.case_b.reference in page.text and f"/links/{within.pk}/" in page.text
    caseworker_b = UserFactory(username="cw-b2", organisation=ngo_b, role=Role.CASEWORKER)
    client.force_login(caseworker_b)
    assert f"/links/{within.pk}/" not in client.get(f"/cases/{within.case_a.reference}/").text


def page_queries(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def test_the_queue_costs_the_same_queries_for_one_pair_or_many(client, host, ngo_b, host_supervisor):
    pair_of(encoded_case(host, CHILD), encoded_case(ngo_b, SAME_CHILD_IN_RUSSIAN))
    client.force_login(host_supervisor)

    def count(query: str) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/links/?{query}")
        assert response.status_code == 200
        return len(queries.captured_queries), "\n".join(page_queries(queries))

    count("queue=across")
    one, _ = count("queue=across")
    for number, (given, family) in enumerate(
        [("Марія", "Орленко"), ("Тарас", "Сивоок"), ("Ірина", "Дзвінчук"), ("Богдан", "Лугова"), ("Ярина", "Мак"),
         ("Остап", "Вербич")]
    ):  # fmt: skip
        child = IdentifyingDetails(
            given_name=given, family_name=family, birth_date=PartialDate(2006 + number, number + 1, 20 + number)
        )
        pair_of(encoded_case(host, child), encoded_case(ngo_b, child))
    assert Candidate.objects.count() == 7
    many, sql = count("queue=across")
    # session, user; the counts of the two queues (across, and the host's own) and the page's count; the
    # page of pairs with both cases, their organisations and institutions; the access-log rows (savepoint,
    # the chain's head locked, one insert for every case shown, the head moved on, release); the searches
    assert many == one == 12, sql
    decided_one, _ = count("queue=across&state=decided")
    assert decided_one == count("queue=across&state=decided")[0]


def test_a_pairs_page_costs_the_same_queries_whatever_its_trail(client, across, host_supervisor):
    client.force_login(host_supervisor)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/links/{across.pk}/").status_code == 200
        return len(queries.captured_queries)

    count()
    before = count()
    for decision, expected in (("same", ""), ("different", "same"), ("same", "different")):
        client.post(f"/links/{across.pk}/decide/", {"decision": decision, "expected": expected})
    assert count() == before


def test_the_decision_trail_is_append_only_in_the_application(across, host_supervisor):
    row = services.decide(candidate_id=across.pk, user=host_supervisor, decision="same", expected="").decision
    with pytest.raises(PermissionError):
        LinkDecision.objects.filter(pk=row.pk).update(decision="different")
    with pytest.raises(PermissionError):
        LinkDecision.objects.filter(pk=row.pk).delete()
    with pytest.raises(PermissionError):
        row.save()


@requires_postgres
def test_the_database_refuses_to_rewrite_a_decision(across, host_supervisor):
    from django.db import DatabaseError, transaction

    row = services.decide(candidate_id=across.pk, user=host_supervisor, decision="same", expected="").decision
    for statement in ("UPDATE linkage_linkdecision SET decision = 'different'", "DELETE FROM linkage_linkdecision"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement + " WHERE id = %s", [row.pk])
    assert LinkDecision.objects.get(pk=row.pk).decision == "same"


@requires_two_roles
def test_the_application_role_holds_no_right_to_rewrite_decisions(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(current_user, 'linkage_linkdecision', 'UPDATE'),"
            " has_table_privilege(current_user, 'linkage_linkdecision', 'DELETE'),"
            " has_table_privilege(current_user, 'linkage_linkdecision', 'INSERT')"
        )
        assert cursor.fetchone() == (False, False, True)


def test_a_case_created_with_details_finds_its_pair_when_the_transaction_commits(
    ngo_a, ngo_b, caseworker, caseworker_b, django_capture_on_commit_callbacks
):
    values = {"sex": "M", "oblast": "UA-14", "reported_on": dt.date(2023, 3, 1)}
    with django_capture_on_commit_callbacks(execute=True):
        first = case_services.create_case(actor=case_services.Actor.for_user(caseworker), values=values, details=CHILD)
    with django_capture_on_commit_callbacks(execute=True):
        second = case_services.create_case(
            actor=case_services.Actor.for_user(caseworker_b), values=values, details=SAME_CHILD_IN_RUSSIAN
        )
    pair = Candidate.objects.get()
    assert (pair.case_a_id, pair.case_b_id, pair.across_organisations) == (first.pk, second.pk, True)


def test_the_figures_read_the_trail_not_the_pairs_cached_state(across, host_supervisor):
    # Whoever could write the pairs' table (the application's role) cannot make or unmake a child by it.
    services.decide(candidate_id=across.pk, user=host_supervisor, decision="same", expected="")
    Candidate.objects.filter(pk=across.pk).update(decision="different")
    assert selectors.confirmed_groups() == [sorted([across.case_a_id, across.case_b_id])]
    other = CaseFactory(organisation=across.case_a.organisation)
    Candidate.objects.create(case_a=across.case_a, case_b=other, decision="same", across_organisations=False)
    assert selectors.confirmed_groups() == [sorted([across.case_a_id, across.case_b_id])]
