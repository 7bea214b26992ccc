"""Django admin: filters and search, read-only history, status only through the service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from casework import services
from casework.models import Case, StatusChange
from tests.factories import CaseFactory


@pytest.fixture
def admin_user(ngo_a) -> User:
    return User.objects.create_superuser(username="admin", password="admin-password-long", organisation=ngo_a)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def changelist_queries(admin_client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("admin:casework_case_changelist"))
    assert response.status_code == 200
    return len(queries), "\n".join(q["sql"] for q in queries.captured_queries)


def test_it_lists_cases_with_a_query_count_independent_of_their_number(admin_client, ngo_a, ngo_b):
    CaseFactory(organisation=ngo_a)
    one, _ = changelist_queries(admin_client)
    CaseFactory.create_batch(30, organisation=ngo_a)
    CaseFactory.create_batch(10, organisation=ngo_b)
    many, sql = changelist_queries(admin_client)
    assert many == one, sql


def test_it_filters_and_searches_by_reference(admin_client, ngo_a, ngo_b):
    wanted = CaseFactory(organisation=ngo_a, oblast="UA-65")
    other = CaseFactory(organisation=ngo_b, oblast="UA-14")
    url = reverse("admin:casework_case_changelist")
    response = admin_client.get(url, {"q": wanted.reference.lower()})
    assert wanted.reference in response.text and other.reference not in response.text
    response = admin_client.get(url, {"oblast__exact": "UA-14"})
    assert other.reference in response.text and wanted.reference not in response.text
    response = admin_client.get(url, {"organisation__id__exact": ngo_a.pk})
    assert wanted.reference in response.text and other.reference not in response.text
    for params in ({"status__exact": "reported"}, {"placement__exact": "camp"}, {"open": "1"}):
        assert admin_client.get(url, params).status_code == 200


def test_it_shows_history_read_only_and_ignores_a_posted_status(admin_client, case, supervisor):
    services.change_status(
        case=case,
        actor=services.Actor.for_user(supervisor),
        to_status="verified",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=1,
    )
    url = reverse("admin:casework_case_change", args=[case.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert 'name="status_changes-0-to_status"' not in page.text  # history rows are not inputs
    assert 'name="status"' not in page.text
    form = {
        "assigned_to": "",
        "sex": "M",
        "birth_year": "2011",
        "oblast": case.oblast,
        "reported_on": "2023-01-10",
        "displaced_on": "",
        "displaced_precision": "",
        "source": "",
        "placement": "",
        "institution": "",
        "notes": "",
        "loaded_version": "2",
        "status": "repatriated",
        "version": "99",
        "status_changes-TOTAL_FORMS": "1",
        "status_changes-INITIAL_FORMS": "1",
        "status_changes-MIN_NUM_FORMS": "0",
        "status_changes-MAX_NUM_FORMS": "1000",
        "status_changes-0-id": str(StatusChange.objects.get(case=case).pk),
        "status_changes-0-to_status": "withdrawn",
        "status_changes-0-note": "rewritten",
        "_save": "Save",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.text
    case.refresh_from_db()
    assert (case.status, case.sex, case.version) == ("verified", "M", 3)
    change = StatusChange.objects.get(case=case)
    assert (change.to_status, change.note) == ("verified", "")


def test_it_refuses_a_stale_admin_edit(admin_client, case, supervisor):
    url = reverse("admin:casework_case_change", args=[case.pk])
    services.update_case(case=case, actor=services.Actor.for_user(supervisor), expected_version=1, values={"sex": "M"})
    form = {
        "assigned_to": "",
        "sex": "F",
        "birth_year": "2011",
        "oblast": case.oblast,
        "reported_on": "2023-01-10",
        "displaced_precision": "",
        "source": "",
        "placement": "",
        "notes": "",
        "loaded_version": "1",
        "status_changes-TOTAL_FORMS": "0",
        "status_changes-INITIAL_FORMS": "0",
        "status_changes-MIN_NUM_FORMS": "0",
        "status_changes-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "changed since you loaded it" in response.text
    case.refresh_from_db()
    assert (case.sex, case.version) == ("M", 2)


def test_it_shows_screen_errors_next_to_the_notes(admin_client, case):
    url = reverse("admin:casework_case_change", args=[case.pk])
    form = {
        "sex": "F",
        "oblast": case.oblast,
        "reported_on": "2023-01-10",
        "notes": "Aunt's number 067-123-45-67",
        "loaded_version": "1",
        "status_changes-TOTAL_FORMS": "0",
        "status_changes-INITIAL_FORMS": "0",
        "status_changes-MIN_NUM_FORMS": "0",
        "status_changes-MAX_NUM_FORMS": "1000",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "looks like a phone number" in response.text
    case.refresh_from_db()
    assert case.notes == ""


def test_it_changes_status_through_the_service_page(admin_client, case, qatar):
    url = reverse("admin:casework_case_change_status", args=[case.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"to_status": "repatriated", "occurred_on": "2024-05-01", "via": "qatar", "note": "", "version": "1"}
    )
    assert response.status_code == 302
    change = StatusChange.objects.get(case=case)
    assert (change.to_status, change.via, change.recorded_by.username) == ("repatriated", qatar, "admin")


def test_it_shows_rule_errors_on_the_status_page(admin_client, case):
    url = reverse("admin:casework_case_change_status", args=[case.pk])
    response = admin_client.post(url, {"to_status": "withdrawn", "occurred_on": "2024-05-01", "version": "1"})
    assert response.status_code == 200
    assert "Withdrawing a case needs a reason" in response.text
    assert not StatusChange.objects.filter(case=case).exists()


def test_it_reaches_the_status_page_through_the_action(admin_client, case):
    response = admin_client.post(
        reverse("admin:casework_case_changelist"),
        {"action": "change_status_action", "_selected_action": [case.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:casework_case_change_status", args=[case.pk])


def test_it_cannot_delete_cases_or_edit_history(admin_client, case):
    response = admin_client.post(reverse("admin:casework_case_delete", args=[case.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Case.objects.filter(pk=case.pk).exists()
    assert admin_client.get("/admin/casework/statuschange/").status_code == 404


def test_it_creates_a_case_through_the_service(admin_client, ngo_b):
    response = admin_client.post(
        reverse("admin:casework_case_add"),
        {"organisation": ngo_b.pk, "sex": "U", "oblast": "UA-09", "reported_on": "2024-01-05", "notes": ""},
    )
    assert response.status_code == 302, response.text
    case = Case.objects.get()
    assert case.organisation == ngo_b and case.reference.startswith("C-")


def test_it_scopes_staff_to_their_organisation(client, ngo_a, ngo_b):
    staff = User.objects.create_user(
        username="staff", password="staff-password-long", organisation=ngo_a, is_staff=True
    )
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_case", "change_case"]))
    mine, theirs = CaseFactory(organisation=ngo_a), CaseFactory(organisation=ngo_b)
    client.force_login(staff)
    page = client.get(reverse("admin:casework_case_changelist"))
    assert mine.reference in page.text and theirs.reference not in page.text
    assert client.get(reverse("admin:casework_case_change", args=[theirs.pk])).status_code == 302


def test_follow_ups_are_read_only_in_the_admin_and_every_case_shown_is_logged(admin_client, ngo_a):
    from casework.models import AccessLog
    from casework.task_models import Task

    cases = CaseFactory.create_batch(3, organisation=ngo_a)
    tasks = [Task.objects.create(case=case, kind="verify_report", due_on=dt.date(2024, 1, 20)) for case in cases]

    def listed() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse("admin:casework_task_changelist"))
        assert response.status_code == 200
        return len(queries)

    few = listed()
    logged = set(AccessLog.objects.filter(door="admin", action="list").values_list("case_id", flat=True))
    assert logged == {case.pk for case in cases}
    for case in CaseFactory.create_batch(10, organisation=ngo_a):
        Task.objects.create(case=case, kind="verify_report", due_on=dt.date(2024, 1, 21))
    assert listed() == few  # the same queries however many follow-ups
    page = admin_client.get(reverse("admin:casework_task_change", args=[tasks[0].pk]))
    assert page.status_code == 200 and cases[0].reference in page.content.decode()
    assert AccessLog.objects.filter(door="admin", action="view", case=cases[0]).exists()
    posted = admin_client.post(reverse("admin:casework_task_change", args=[tasks[0].pk]), {"note": "changed"})
    assert posted.status_code == 403
    assert admin_client.get(reverse("admin:casework_task_add")).status_code == 403
    tasks[0].refresh_from_db()
    assert tasks[0].note == ""


def test_list_answers_in_the_admin_log_the_cases_they_name(admin_client, ngo_a):
    from accounts.models import Organisation
    from casework.models import AccessLog
    from partners.models import ListAnswer
    from tests.list_helpers import answer, sent_list

    cases = CaseFactory.create_batch(2, organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    made = sent_list(ngo_a, Organisation.objects.get(slug="qatar"), cases)
    for case in cases:
        answer(made, case, "received", dt.date(2024, 3, 5))
    before = AccessLog.objects.count()
    assert admin_client.get(reverse("admin:partners_listanswer_changelist")).status_code == 200
    listed = AccessLog.objects.order_by("id")[before:]
    assert {(row.action, row.door, row.case_id) for row in listed} == {("list", "admin", case.pk) for case in cases}
    first = ListAnswer.objects.order_by("id").first()
    assert admin_client.get(reverse("admin:partners_listanswer_change", args=[first.pk])).status_code == 200
    assert AccessLog.objects.filter(action="view", door="admin", case=first.item.case).exists()
