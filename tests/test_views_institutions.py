"""Institutions: the list with the organisation's own counts, and each one's cases (own organisation's only)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import CaseFactory, InstitutionFactory


def page_queries(queries) -> list[str]:
    """The page's own queries. The session's renewal (a write at most once a minute) is not the page's cost."""
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


@pytest.fixture
def institution(db):
    return InstitutionFactory(code="crimea-01", name="Children's home No. 1 (synthetic)", region="UA-43")


def test_it_lists_institutions_with_counts_of_own_cases_only(client, caseworker, ngo_a, ngo_b, institution):
    CaseFactory.create_batch(2, organisation=ngo_a, institution=institution)
    CaseFactory(organisation=ngo_a, institution=institution, status="reunified")
    CaseFactory.create_batch(5, organisation=ngo_b, institution=institution)
    client.force_login(caseworker)
    response = client.get("/institutions/")
    assert response.status_code == 200
    [row] = response.context["institutions"]
    assert (row.open_count, row.case_count) == (2, 3)
    assert "Children&#x27;s home No. 1 (synthetic)" in response.text
    assert "Autonomous Republic of Crimea" in response.text


def test_it_costs_the_same_queries_for_one_institution_or_many(client, caseworker, ngo_a):
    client.force_login(caseworker)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/institutions/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    InstitutionFactory()
    one, _ = count()
    for institution in InstitutionFactory.create_batch(12):
        CaseFactory(organisation=ngo_a, institution=institution)
    many, sql = count()
    assert many == one == 3, sql  # session, user, institutions with their counts


def test_it_shows_an_institution_with_its_own_cases_only(client, caseworker, ngo_a, ngo_b, institution):
    own = CaseFactory(organisation=ngo_a, institution=institution)
    elsewhere = CaseFactory(organisation=ngo_a)
    foreign = CaseFactory(organisation=ngo_b, institution=institution)
    client.force_login(caseworker)
    response = client.get("/institutions/crimea-01/")
    assert response.status_code == 200
    assert [case.reference for case in response.context["page"].object_list] == [own.reference]
    assert foreign.reference not in response.text and elsewhere.reference not in response.text
    assert "1 case" in response.text
    assert "/cases/?institution=crimea-01" in response.text


def test_it_costs_the_same_queries_for_one_held_case_or_many(client, caseworker, ngo_a, institution):
    CaseFactory(organisation=ngo_a, institution=institution, assigned_to=caseworker)
    client.force_login(caseworker)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/institutions/crimea-01/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    one, _ = count()
    CaseFactory.create_batch(30, organisation=ngo_a, institution=institution, assigned_to=caseworker)
    many, sql = count()
    # session, user, institution, count, page of cases, access-log rows (one insert), the chain's head read and moved
    assert many == one == 8, sql


def test_it_answers_404_for_an_unknown_institution(client, caseworker):
    client.force_login(caseworker)
    assert client.get("/institutions/nowhere/").status_code == 404


@pytest.mark.parametrize("url", ["/institutions/", "/institutions/crimea-01/"])
def test_it_refuses_an_analyst(client, analyst, institution, url):
    client.force_login(analyst)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role_fixture", ["caseworker", "supervisor", "org_admin"])
def test_it_shows_institutions_to_every_reading_role(client, request, role_fixture, institution):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get("/institutions/").status_code == 200
    assert client.get("/institutions/crimea-01/").status_code == 200
