"""The case list: scope, filters, search, sorting, pagination, count, and a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from casework.models import Case
from tests.factories import CaseFactory, InstitutionFactory

URL = "/cases/"


def page_queries(queries) -> list[str]:
    """The page's own queries. The session's renewal (a write at most once a minute) is not the page's cost."""
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


@pytest.fixture
def signed_in(client, caseworker):
    client.force_login(caseworker)
    return client


def listed(response) -> list[str]:
    assert response.status_code == 200, response.text[:2000]
    return [case.reference for case in response.context["page"].object_list]


def test_it_lists_only_the_organisations_cases_and_counts_them(signed_in, ngo_a, ngo_b):
    own = CaseFactory.create_batch(3, organisation=ngo_a)
    foreign = CaseFactory(organisation=ngo_b)
    response = signed_in.get(URL)
    assert sorted(listed(response)) == sorted(case.reference for case in own)
    assert foreign.reference not in response.text
    assert "3 cases" in response.text


def test_it_shows_reference_status_oblast_age_band_and_last_change(signed_in, ngo_a):
    case = CaseFactory(
        organisation=ngo_a, birth_year=2008, reported_on=dt.date(2023, 1, 10), oblast="UA-65", status="located"
    )
    Case.objects.filter(pk=case.pk).update(last_change_at=dt.datetime(2024, 3, 5, 12, tzinfo=dt.UTC))
    text = signed_in.get(URL).text
    assert case.reference in text
    assert "Located" in text
    assert "Kherson oblast" in text
    assert "14–17" in text  # 2023 - 2008 = 15
    assert "5 Mar 2024" in text


@pytest.mark.parametrize(
    ("birth_year", "band"),
    [(2022, "0–4"), (2018, "5–9"), (2010, "10–13"), (2006, "14–17"), (2000, "18+"), (None, "unknown")],
)
def test_it_shows_the_age_band_at_the_report(signed_in, ngo_a, birth_year, band):
    CaseFactory(organisation=ngo_a, birth_year=birth_year, reported_on=dt.date(2023, 1, 10))
    assert f'data-label="Age band">{band}</td>' in signed_in.get(URL).text


def test_it_filters_by_status_oblast_placement_institution_and_risk(signed_in, ngo_a):
    home = InstitutionFactory(code="crimea-77")
    wanted = CaseFactory(
        organisation=ngo_a, status="located", oblast="UA-65", placement="camp", institution=home, risk_military=True
    )
    CaseFactory(organisation=ngo_a, status="reported", oblast="UA-65", placement="camp", institution=home)
    CaseFactory(organisation=ngo_a, status="located", oblast="UA-14", placement="relatives")
    for params in (
        {"status": "located", "oblast": "UA-65"},
        {"placement": "camp", "risk": "military"},
        {"institution": "crimea-77", "status": "located"},
        {"risk": "military"},
    ):
        assert listed(signed_in.get(URL, params)) == [wanted.reference], params


def test_it_filters_the_cases_assigned_to_me(signed_in, caseworker, supervisor, ngo_a):
    mine = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    CaseFactory(organisation=ngo_a, assigned_to=supervisor)
    CaseFactory(organisation=ngo_a)
    assert listed(signed_in.get(URL, {"mine": "on"})) == [mine.reference]
    assert listed(signed_in.get(URL, {"mine": "1"})) == [mine.reference]
    assert len(listed(signed_in.get(URL))) == 3


def test_it_filters_cases_with_no_status_change_in_90_days(signed_in, ngo_a):
    idle = CaseFactory(organisation=ngo_a)
    busy = CaseFactory(organisation=ngo_a)
    long_ago = timezone.now() - dt.timedelta(days=100)
    Case.objects.filter(pk=idle.pk).update(created_at=long_ago)
    Case.objects.filter(pk=busy.pk).update(created_at=long_ago, last_change_at=timezone.now())
    assert listed(signed_in.get(URL, {"idle": "1"})) == [idle.reference]


def test_it_finds_a_case_by_reference_typed_loosely(signed_in, ngo_a, ngo_b):
    case = CaseFactory(organisation=ngo_a, reference="C-7K3M-Q9XR")
    CaseFactory(organisation=ngo_a, reference="C-AAAA-BBBB")
    CaseFactory(organisation=ngo_b, reference="C-7K3M-Q9XS")
    for typed in ("C-7K3M-Q9XR", " c-7k3m-q9xr ", "c-7k3m", "Q9XR", "7k3m"):
        assert listed(signed_in.get(URL, {"q": typed})) == [case.reference], typed


def test_it_finds_nothing_for_another_organisations_reference(signed_in, ngo_b):
    foreign = CaseFactory(organisation=ngo_b)
    response = signed_in.get(URL, {"q": foreign.reference})
    assert listed(response) == []
    assert "No case matches these filters." in response.text
    assert "0 cases" in response.text


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("reference", ["C-AAAA-0001", "C-AAAA-0002", "C-AAAA-0003"]),
        ("-reference", ["C-AAAA-0003", "C-AAAA-0002", "C-AAAA-0001"]),
        ("reported", ["C-AAAA-0002", "C-AAAA-0003", "C-AAAA-0001"]),
        ("-reported", ["C-AAAA-0001", "C-AAAA-0003", "C-AAAA-0002"]),
        ("changed", ["C-AAAA-0003", "C-AAAA-0001", "C-AAAA-0002"]),
        ("-changed", ["C-AAAA-0002", "C-AAAA-0001", "C-AAAA-0003"]),
        ("status", ["C-AAAA-0001", "C-AAAA-0002", "C-AAAA-0003"]),
        ("-status", ["C-AAAA-0003", "C-AAAA-0002", "C-AAAA-0001"]),
    ],
)
def test_it_sorts_by_whitelisted_keys(signed_in, ngo_a, sort, expected):
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    CaseFactory(organisation=ngo_a, reference="C-AAAA-0001", reported_on=dt.date(2023, 3, 1), status="reported")
    CaseFactory(organisation=ngo_a, reference="C-AAAA-0002", reported_on=dt.date(2023, 1, 1), status="located")
    CaseFactory(organisation=ngo_a, reference="C-AAAA-0003", reported_on=dt.date(2023, 2, 1), status="withdrawn")
    Case.objects.filter(reference="C-AAAA-0001").update(last_change_at=day)
    Case.objects.filter(reference="C-AAAA-0002").update(last_change_at=day + dt.timedelta(days=1))
    assert listed(signed_in.get(URL, {"sort": sort})) == expected


@pytest.mark.parametrize(
    "params",
    [{"sort": "organisation"}, {"status": "lost"}, {"oblast": "UA-99"}, {"institution": "nowhere"}, {"risk": "x"}],
)
def test_it_explains_a_bad_filter_or_sort_value_instead_of_failing(signed_in, ngo_a, params):
    CaseFactory(organisation=ngo_a)
    response = signed_in.get(URL, params)
    assert response.status_code == 400
    assert "Some filters could not be read" in response.text
    assert "Select a valid choice" in response.text
    assert "page" not in response.context


def test_it_sorts_by_column_headers_that_reverse_on_a_second_click(signed_in, ngo_a):
    CaseFactory(organisation=ngo_a)
    text = signed_in.get(URL, {"sort": "reference", "status": "reported"}).text
    assert 'aria-sort="ascending"' in text
    assert "?sort=-reference&amp;status=reported" in text or "?status=reported&amp;sort=-reference" in text


def test_it_paginates_fifty_a_page_and_keeps_the_filters(signed_in, ngo_a):
    CaseFactory.create_batch(55, organisation=ngo_a, oblast="UA-65")
    first = signed_in.get(URL, {"oblast": "UA-65", "sort": "reference"})
    assert len(listed(first)) == 50
    assert "55 cases" in first.text
    assert "oblast=UA-65" in first.text and "page=2" in first.text
    second = signed_in.get(URL, {"oblast": "UA-65", "sort": "reference", "page": "2"})
    assert len(listed(second)) == 5
    assert set(listed(first)).isdisjoint(listed(second))
    assert len(listed(signed_in.get(URL, {"page": "many"}))) == 50  # an unreadable page number: the first page
    assert len(listed(signed_in.get(URL, {"page": "99"}))) == 5  # past the end: the last page


def test_it_costs_the_same_queries_for_one_case_or_forty(signed_in, ngo_a, caseworker):
    home = InstitutionFactory()
    CaseFactory(organisation=ngo_a, assigned_to=caseworker, institution=home)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = signed_in.get(URL, {"sort": "-changed", "oblast": "UA-14"})
        assert response.status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    count()
    one, _ = count()
    CaseFactory.create_batch(39, organisation=ngo_a, assigned_to=caseworker, institution=home)
    many, sql = count()
    # session, user, institutions for the filter's choices, the reader's saved filters, the count, the page
    # of cases, the access-log rows (one insert for the whole page) and the audit chain's head, locked and moved on
    assert many == one == 9, sql


def test_it_refuses_an_analyst(client, analyst):
    client.force_login(analyst)
    response = client.get(URL)
    assert response.status_code == 403
    assert "aggregate figures only" in response.text


def test_it_shows_an_org_admin_the_cases_without_a_new_case_button(client, org_admin, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    client.force_login(org_admin)
    response = client.get(URL)
    assert listed(response) == [case.reference]
    assert "/cases/new/" not in response.text


def test_it_shows_a_supervisor_the_cases(client, supervisor, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    client.force_login(supervisor)
    assert listed(client.get(URL)) == [case.reference]


def test_it_counts_no_further_than_the_cap_and_says_more_than(signed_in, ngo_a, monkeypatch):
    # Past the cap (casework.paging), the list says "more than" and counts in one LIMITed query.
    monkeypatch.setattr("casework.paging.COUNT_CAP", 20)
    CaseFactory.create_batch(55, organisation=ngo_a, oblast="UA-65")
    with CaptureQueriesContext(connection) as queries:
        first = signed_in.get(URL, {"oblast": "UA-65", "sort": "reference"})
    assert len(listed(first)) == 50
    assert "More than 50 cases" in first.text and "Page 1 of more than 1" in first.text
    assert "page=2" in first.text
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1 and "LIMIT 51" in counts[0], counts
    # The second page counts far enough to know it is the last: exact again.
    second = signed_in.get(URL, {"oblast": "UA-65", "sort": "reference", "page": "2"})
    assert len(listed(second)) == 5
    assert "55 cases" in second.text and "Page 2 of 2" in second.text
    assert set(listed(first)).isdisjoint(listed(second))
