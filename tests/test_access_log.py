"""The read-access log: one row per case seen or changed, by every door; none for a refused view."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Organisation, User
from casework import services
from casework.models import AccessLog, Case
from tests.api_helpers import make_token, share
from tests.conftest import requires_postgres
from tests.factories import CaseFactory, InstitutionFactory

CASE_FORM = {
    "sex": "F",
    "birth_year": "2012",
    "oblast": "UA-14",
    "reported_on": "2023-01-10",
    "placement": "camp",
}


def page_queries(queries) -> list[str]:
    """The page's own queries. The session's renewal (a write at most once a minute) is not the page's cost."""
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


def rows(**filters) -> list[AccessLog]:
    return list(AccessLog.objects.filter(**filters).order_by("id"))


@pytest.fixture
def admin_user(ngo_a) -> User:
    return User.objects.create_superuser(username="admin", password="admin-password-long", organisation=ngo_a)


# --- the web pages -----------------------------------------------------------------------


def test_it_logs_one_row_when_a_case_page_is_opened(client, caseworker, case):
    client.force_login(caseworker)
    assert client.get(f"/cases/{case.reference}/", REMOTE_ADDR="192.0.2.10").status_code == 200
    [row] = rows()
    assert (row.case_id, row.user_id, row.token_id) == (case.pk, caseworker.pk, None)
    assert (row.organisation_id, row.action, row.door) == (caseworker.organisation_id, "view", "web")
    assert row.ip_address == "192.0.2.10"


def test_it_takes_the_address_from_the_connection_never_from_x_forwarded_for(client, caseworker, case):
    client.force_login(caseworker)
    client.get(f"/cases/{case.reference}/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert [row.ip_address for row in rows()] == ["192.0.2.10"]


def test_it_logs_nothing_for_another_organisations_case(client, caseworker_b, case):
    client.force_login(caseworker_b)
    assert client.get(f"/cases/{case.reference}/").status_code == 404
    assert client.get(f"/cases/{case.reference}/edit/").status_code == 404
    assert client.get("/cases/C-0000-0000/").status_code == 404
    assert rows() == []


def test_it_logs_nothing_for_an_analyst(client, analyst, case):
    client.force_login(analyst)
    assert client.get(f"/cases/{case.reference}/").status_code == 403
    assert client.get("/cases/").status_code == 403
    assert rows() == []


def test_it_logs_nothing_for_a_lower_case_reference_until_the_page_is_shown(client, caseworker, case):
    client.force_login(caseworker)
    assert client.get(f"/cases/{case.reference.lower()}/").status_code == 302
    assert rows() == []


def test_it_logs_the_edit_form_as_a_view_and_a_saved_edit_as_an_edit(client, caseworker, case):
    client.force_login(caseworker)
    assert client.get(f"/cases/{case.reference}/edit/").status_code == 200
    response = client.post(f"/cases/{case.reference}/edit/", {**CASE_FORM, "version": case.version})
    assert response.status_code == 302
    assert [(row.action, row.case_id) for row in rows()] == [("view", case.pk), ("edit", case.pk)]


def test_it_logs_no_edit_when_nothing_changed(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, sex="F", birth_year=2012, oblast="UA-14", placement="camp")
    client.force_login(caseworker)
    response = client.post(f"/cases/{case.reference}/edit/", {**CASE_FORM, "version": case.version})
    assert response.status_code == 302
    assert rows(action="edit") == []


def test_it_logs_a_created_case(client, caseworker):
    client.force_login(caseworker)
    response = client.post("/cases/new/", CASE_FORM)
    assert response.status_code == 302
    case = Case.objects.get()
    assert [(row.action, row.case_id, row.door) for row in rows()] == [("create", case.pk, "web")]


def test_it_logs_a_status_change(client, caseworker, case):
    client.force_login(caseworker)
    response = client.post(
        f"/cases/{case.reference}/status/",
        {"to_status": "verified", "occurred_on": "2023-02-01", "version": case.version},
    )
    assert response.status_code == 302
    assert [(row.action, row.case_id) for row in rows()] == [("status_change", case.pk)]


def test_it_logs_one_list_row_per_case_shown_on_the_page(client, caseworker, ngo_a, ngo_b):
    CaseFactory.create_batch(55, organisation=ngo_a)
    CaseFactory(organisation=ngo_b)
    client.force_login(caseworker)
    response = client.get("/cases/", {"sort": "reference"})
    shown = {case.pk for case in response.context["page"].object_list}
    logged = rows(action="list")
    assert len(shown) == 50
    assert {row.case_id for row in logged} == shown and len(logged) == 50
    assert {(row.door, row.user_id) for row in logged} == {("web", caseworker.pk)}
    client.get("/cases/", {"sort": "reference", "page": "2"})
    assert AccessLog.objects.filter(action="list").count() == 55


def test_it_logs_nothing_for_an_empty_list(client, caseworker):
    client.force_login(caseworker)
    assert client.get("/cases/").status_code == 200
    assert rows() == []


def test_it_keeps_the_list_query_count_constant_while_logging_every_row(client, supervisor, ngo_a):
    client.force_login(supervisor)
    CaseFactory(organisation=ngo_a)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/cases/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    count()
    one, _ = count()
    CaseFactory.create_batch(45, organisation=ngo_a)
    many, sql = count()
    # session, user, institutions for the filter, the reader's saved filters, count, page of cases, one insert
    # for the log rows with the audit chain's head read (locked) and moved on, and (a supervisor) the partners
    # to share with, the organisation's draft lists and the intermediaries to put cases on a list for
    assert many == one == 12, sql
    assert sql.count('INSERT INTO "casework_accesslog"') == 1


def test_it_logs_the_cases_listed_on_an_institution_page(client, caseworker, ngo_a):
    home = InstitutionFactory(code="crimea-01")
    held = CaseFactory.create_batch(3, organisation=ngo_a, institution=home)
    CaseFactory(organisation=ngo_a)
    client.force_login(caseworker)
    assert client.get("/institutions/crimea-01/").status_code == 200
    assert sorted(row.case_id for row in rows(action="list")) == sorted(case.pk for case in held)


# --- the admin ---------------------------------------------------------------------------


def test_it_logs_the_admin_change_page_of_a_case(client, admin_user, case):
    client.force_login(admin_user)
    response = client.get(reverse("admin:casework_case_change", args=[case.pk]), REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 200
    [row] = rows()
    assert (row.case_id, row.user_id, row.action, row.door) == (case.pk, admin_user.pk, "view", "admin")
    assert row.ip_address == "198.51.100.7"


def test_it_logs_the_admin_change_status_page_and_the_change(client, admin_user, case):
    client.force_login(admin_user)
    url = reverse("admin:casework_case_change_status", args=[case.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"to_status": "verified", "occurred_on": "2023-02-01", "version": case.version})
    assert response.status_code == 302
    assert [(row.action, row.door) for row in rows()] == [("view", "admin"), ("status_change", "admin")]


def test_it_logs_the_cases_of_the_admin_list(client, admin_user, ngo_a):
    cases = CaseFactory.create_batch(3, organisation=ngo_a)
    client.force_login(admin_user)
    assert client.get(reverse("admin:casework_case_changelist")).status_code == 200
    assert sorted(row.case_id for row in rows(action="list", door="admin")) == sorted(case.pk for case in cases)


def test_it_logs_nothing_for_a_missing_case_in_the_admin(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:casework_case_change", args=[999999]))
    assert response.status_code == 302  # the admin sends you back with "does not exist"
    assert rows() == []


# --- the API -----------------------------------------------------------------------------


def test_it_logs_an_api_read_with_the_token_and_its_organisation(ngo_a, case):
    partner = Organisation.objects.get(slug="qatar")
    share(case, partner)
    token, plain = make_token(partner)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get(f"/api/v1/cases/{case.reference}/", REMOTE_ADDR="203.0.113.5").status_code == 200
    [row] = rows(door="api")
    assert (row.case_id, row.token_id, row.user_id) == (case.pk, token.pk, None)
    assert (row.organisation_id, row.action, row.ip_address) == (partner.pk, "view", "203.0.113.5")


def test_it_logs_nothing_for_an_api_read_of_an_unshared_case(case):
    _token, plain = make_token(Organisation.objects.get(slug="qatar"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get(f"/api/v1/cases/{case.reference}/").status_code == 404
    assert rows() == []


# --- who sees the log --------------------------------------------------------------------


def test_it_shows_a_supervisor_the_access_log_of_a_case(client, supervisor, caseworker, case):
    partner = Organisation.objects.get(slug="qatar")
    share(case, partner)
    token, plain = make_token(partner, name="Sync (synthetic)")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    api.get(f"/api/v1/cases/{case.reference}/", REMOTE_ADDR="203.0.113.5")
    client.force_login(caseworker)
    client.get(f"/cases/{case.reference}/", REMOTE_ADDR="192.0.2.10")
    client.force_login(supervisor)
    page = client.get(f"/cases/{case.reference}/")
    assert f'href="/cases/{case.reference}/access/"' in page.text
    response = client.get(f"/cases/{case.reference}/access/")
    assert response.status_code == 200
    text = response.text
    for expected in (
        "caseworker",
        f"API token {token.prefix}",
        "State of Qatar",
        "NGO A (synthetic)",
        "Viewed",
        "Web",
        "API",
        "192.0.2.10",
        "203.0.113.5",
        "3 entries",
    ):
        assert expected in text, expected
    # The log of a case shows who and when, never the record itself.
    assert case.get_oblast_display() not in text


def test_it_paginates_the_access_log_with_a_constant_number_of_queries(client, supervisor, case):
    client.force_login(supervisor)
    url = f"/cases/{case.reference}/access/"

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    client.get(f"/cases/{case.reference}/")
    count()
    one, _ = count()
    for _ in range(60):
        client.get(f"/cases/{case.reference}/")
    many, sql = count()
    assert many == one == 5, sql  # session, user, case, count, page of entries (with user, token, organisation)
    assert "Page 1 of 2" in client.get(url).text
    assert len(client.get(url, {"page": "2"}).context["page"].object_list) == 11


@pytest.mark.parametrize("role_fixture", ["caseworker", "org_admin", "analyst"])
def test_it_refuses_the_access_log_to_other_roles(client, request, role_fixture, case):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(f"/cases/{case.reference}/access/").status_code == 403
    if role_fixture != "analyst":
        assert "/access/" not in client.get(f"/cases/{case.reference}/").text


def test_it_answers_404_for_the_access_log_of_another_organisations_case(client, ngo_b, case):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="supervisor-b", organisation=ngo_b, role="supervisor"))
    assert client.get(f"/cases/{case.reference}/access/").status_code == 404


# --- the admin's search of the log -------------------------------------------------------


def test_it_lets_admins_search_and_filter_the_access_log_read_only(client, admin_user, caseworker, ngo_a):
    wanted = CaseFactory(organisation=ngo_a, reference="C-7K3M-Q9XR")
    other = CaseFactory(organisation=ngo_a, reference="C-AAAA-BBBB")
    services.change_status(
        case=other,
        actor=services.Actor.for_user(caseworker),
        to_status="verified",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=1,
    )
    client.force_login(caseworker)
    client.get(f"/cases/{wanted.reference}/")
    client.get(f"/cases/{other.reference}/")
    client.force_login(admin_user)
    url = reverse("admin:casework_accesslog_changelist")
    by_reference = client.get(url, {"q": "c-7k3m"})
    assert by_reference.status_code == 200
    assert [row.case_id for row in by_reference.context["cl"].result_list] == [wanted.pk]
    by_username = client.get(url, {"q": "casework"})
    assert {row.case_id for row in by_username.context["cl"].result_list} == {wanted.pk, other.pk}
    for params in ({"door__exact": "web"}, {"action__exact": "view"}, {"organisation__id__exact": ngo_a.pk}):
        assert client.get(url, params).status_code == 200
    assert client.get(reverse("admin:casework_accesslog_add")).status_code == 403
    entry = AccessLog.objects.filter(user=caseworker).first()
    change = client.get(reverse("admin:casework_accesslog_change", args=[entry.pk]))
    assert change.status_code == 200 and 'type="submit"' not in change.text.split('id="content"')[1]
    assert client.post(reverse("admin:casework_accesslog_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AccessLog.objects.filter(pk=entry.pk).exists()


def test_it_lists_the_access_log_in_the_admin_with_a_constant_number_of_queries(client, admin_user, caseworker, ngo_a):
    client.force_login(caseworker)
    first = CaseFactory(organisation=ngo_a)
    client.get(f"/cases/{first.reference}/")
    client.force_login(admin_user)
    url = reverse("admin:casework_accesslog_changelist")

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries), "\n".join(q["sql"] for q in queries.captured_queries)

    count()
    one, _ = count()
    client.force_login(caseworker)
    for case in CaseFactory.create_batch(20, organisation=ngo_a):
        client.get(f"/cases/{case.reference}/")
    client.force_login(admin_user)
    count()
    many, sql = count()
    assert many == one, sql


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_request_outside_any_transaction_logs_in_one_statement_on_the_chain(client, caseworker, ngo_a):
    # A real request runs in no transaction of Django's: the log's rows go in one statement (casework.audit),
    # chained by PostgreSQL and committed as audit_chain.appending would, before the page is answered (issue 16).
    from casework import audit, audit_chain

    cases = CaseFactory.create_batch(3, organisation=ngo_a)
    client.force_login(caseworker)
    client.get("/cases/")  # the chain's head, made by the usual path when it has none
    calls = []
    original = audit._append_in_one_statement

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    with pytest.MonkeyPatch.context() as patch, CaptureQueriesContext(connection) as queries:
        patch.setattr(audit, "_append_in_one_statement", spy)
        assert client.get("/cases/").status_code == 200
        assert client.get(f"/cases/{cases[0].reference}/").status_code == 200
    assert calls == [True, True]
    # Still in Django's query log, as the usual path's statements are: one insert for the page's rows.
    logged_sql = [q["sql"] for q in queries.captured_queries]
    assert sum("INSERT INTO casework_accesslog" in sql for sql in logged_sql) == 2, logged_sql
    logged = list(AccessLog.objects.order_by("id").values_list("case_id", "action", "user_id", "ip_address"))
    listed = sorted((case.pk, "list", caseworker.pk, "127.0.0.1") for case in cases)
    assert sorted(logged[3:6]) == listed
    assert logged[6] == (cases[0].pk, "view", caseworker.pk, "127.0.0.1")
    report = audit_chain.verify(AccessLog)
    assert report.intact and report.rows == 7, report


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_in_the_one_statement_is_djangos_error_and_writes_nothing(caseworker, ngo_a):
    from django.db import DatabaseError

    from casework import audit, audit_chain
    from casework.audit import log_access

    case = CaseFactory(organisation=ngo_a)
    log_access(action="view", door="web", organisation_id=ngo_a.pk, case_ids=[case.pk], user=caseworker)
    rows = AccessLog.objects.count()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audit, "_APPEND", audit._APPEND.replace("INTO casework_accesslog", "INTO casework_no_such_table"))
        with pytest.raises(DatabaseError):  # Django's, not psycopg's: the connection is judged as Django's are
            log_access(action="view", door="web", organisation_id=ngo_a.pk, case_ids=[case.pk], user=caseworker)
    assert AccessLog.objects.count() == rows
    assert audit_chain.verify(AccessLog).intact


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pages_logged_at_once_from_many_threads_make_one_unbroken_chain(caseworker, ngo_a):
    # Readers on several threads (gunicorn's), each page's rows chained by PostgreSQL in one statement: the
    # hashes are audit_chain.link's (an IPv6 address, a row without a case, a token-less reader included),
    # and the chain follows the rows' ids whatever order the pages come in.
    import threading

    from django.db import connections

    from casework import audit, audit_chain
    from casework.audit import log_access

    cases = CaseFactory.create_batch(5, organisation=ngo_a)
    ids = [case.pk for case in cases]
    log_access(action="view", door="web", organisation_id=ngo_a.pk, case_ids=[ids[0]], user=caseworker)
    statements = []
    original = audit._append_in_one_statement

    def counted(*args):
        statements.append(original(*args))
        return statements[-1]

    class Request:
        def __init__(self, address: str) -> None:
            self.META = {"REMOTE_ADDR": address}

    def reader(number: int) -> None:
        try:
            for page in range(6):
                log_access(
                    action="list",
                    door="web",
                    organisation_id=ngo_a.pk,
                    case_ids=[*ids[: 1 + (number + page) % 5], None] if page % 3 == 0 else ids,
                    user=caseworker,
                    request=Request("2001:db8::1" if number % 2 else "127.0.0.1"),
                )
        finally:
            connections.close_all()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(audit, "_append_in_one_statement", counted)
        threads = [threading.Thread(target=reader, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statements == [True] * 24
    report = audit_chain.verify(AccessLog)
    assert report.intact, report
    written = sum(2 + (number + page) % 5 if page % 3 == 0 else len(ids) for number in range(4) for page in range(6))
    assert report.rows == AccessLog.objects.count() == 1 + written
    assert AccessLog.objects.filter(case__isnull=True).count() == 8
    assert AccessLog.objects.filter(ip_address="2001:db8::1").exists()
