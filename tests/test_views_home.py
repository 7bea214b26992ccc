"""The home page: open cases by status, idle cases, latest changes, the reader's own cases."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casework import services
from tests.factories import CaseFactory


def page_queries(queries) -> list[str]:
    """The page's own queries. The session's renewal (a write at most once a minute) is not the page's cost."""
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


def _move(case, user, to_status, occurred_on, via=None):
    services.change_status(
        case=case,
        actor=services.Actor.for_user(user),
        to_status=to_status,
        occurred_on=occurred_on,
        expected_version=case.version,
        via=via,
    )


def test_it_counts_only_the_organisations_open_cases(client, caseworker, ngo_a, ngo_b):
    CaseFactory.create_batch(3, organisation=ngo_a)
    CaseFactory.create_batch(2, organisation=ngo_a, status="located")
    CaseFactory.create_batch(4, organisation=ngo_a, status="withdrawn")
    CaseFactory.create_batch(7, organisation=ngo_b)
    client.force_login(caseworker)
    response = client.get("/")
    assert response.status_code == 200
    summary = response.context["summary"]
    counts = {item.status: item.count for item in summary.open_by_status}
    assert counts["reported"] == 3 and counts["located"] == 2
    assert "withdrawn" not in counts  # closed
    assert summary.open_total == 5


def test_it_lists_the_readers_cases_and_the_latest_changes(client, caseworker, ngo_a, ngo_b, caseworker_b):
    mine = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    CaseFactory(organisation=ngo_a)
    foreign = CaseFactory(organisation=ngo_b, assigned_to=caseworker_b)
    _move(mine, caseworker, "verified", dt.date(2023, 2, 1))
    _move(foreign, caseworker_b, "verified", dt.date(2023, 2, 1))
    client.force_login(caseworker)
    response = client.get("/")
    summary = response.context["summary"]
    assert summary.assigned_count == 1 and summary.assigned_cases == [mine]
    assert [change.case for change in summary.latest_changes] == [mine]
    assert mine.reference in response.text
    assert foreign.reference not in response.text


def test_it_lists_cases_with_no_status_change_in_90_days(client, caseworker, ngo_a):
    old = CaseFactory(organisation=ngo_a)
    CaseFactory(organisation=ngo_a, status="reunified")  # closed: not idle
    fresh = CaseFactory(organisation=ngo_a)
    long_ago = timezone.now() - dt.timedelta(days=120)
    type(old).objects.filter(pk=old.pk).update(created_at=long_ago)
    type(fresh).objects.filter(pk=fresh.pk).update(created_at=long_ago, last_change_at=timezone.now())
    client.force_login(caseworker)
    summary = client.get("/").context["summary"]
    assert summary.idle_count == 1
    assert summary.idle_cases == [old]


def test_it_costs_the_same_queries_for_one_case_or_many(client, caseworker, ngo_a, qatar):
    CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    client.force_login(caseworker)
    client.get("/")  # warm up: session, content types

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    one, _ = count()
    for case in CaseFactory.create_batch(20, organisation=ngo_a, assigned_to=caseworker):
        _move(case, caseworker, "repatriated", dt.date(2023, 3, 1), via=qatar)
    many, sql = count()
    # session, user, one aggregate of counts, idle cases, assigned cases, latest changes,
    # my work: the follow-ups' counts, the changes by others, the overdue, the due this week, the shares ending,
    # and one insert into the access log for every case the page names,
    # with the audit chain's head locked and moved on
    assert many == one == 14, sql


def test_it_sends_an_analyst_to_the_figures(client, analyst):
    client.force_login(analyst)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("figures")


def test_it_shows_an_org_admin_the_cases_but_no_new_case_button(client, org_admin, ngo_a):
    CaseFactory(organisation=ngo_a)
    client.force_login(org_admin)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["summary"].open_total == 1
    assert "/cases/new/" not in response.text


def test_it_offers_a_caseworker_the_new_case_button(client, caseworker):
    client.force_login(caseworker)
    assert "/cases/new/" in client.get("/").text
