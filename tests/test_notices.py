"""Notices in the register (the bell) and the daily digest by e-mail, through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role, User
from casework import followups, services
from casework.models import Notice, Task, TaskKind
from casework.tasks import send_daily_digests
from tests.factories import CaseFactory, UserFactory
from tests.test_password_reset import SMTP_SETTINGS, Inbox, free_port
from tests.test_views_home import page_queries


def actor(user):
    return services.Actor.for_user(user)


def move(user, case, to, on=dt.date(2023, 2, 1)):
    case.refresh_from_db()
    services.change_status(case=case, actor=actor(user), to_status=to, occurred_on=on, expected_version=case.version)


def unread(user) -> int:
    return User.objects.get(pk=user.pk).unread_notices


def test_a_status_change_by_someone_else_rings_the_assignees_bell(client, caseworker, supervisor, ngo_a):
    case = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    move(caseworker, case, "verified")  # their own change: no notice
    assert unread(caseworker) == 0 and not Notice.objects.exists()
    move(supervisor, case, "located")
    [notice] = Notice.objects.all()
    assert (notice.user, notice.kind, notice.case, notice.status, notice.by) == (
        caseworker,
        Notice.Kind.STATUS_CHANGED,
        case,
        "located",
        "supervisor",
    )
    assert unread(caseworker) == 1
    client.force_login(caseworker)
    page = client.get("/cases/")
    assert '<span class="count">1</span>' in page.text
    listing = client.get("/notices/")
    assert case.reference in listing.text and "status changed by supervisor" in listing.text
    assert client.post("/notices/read/").status_code == 302
    assert unread(caseworker) == 0 and Notice.objects.get().read_at is not None
    assert '<span class="count">0</span>' in client.get("/cases/").text


def test_the_bell_costs_no_query(client, caseworker, supervisor, ngo_a):
    cases = CaseFactory.create_batch(3, organisation=ngo_a, assigned_to=caseworker)
    client.force_login(caseworker)
    client.get("/institutions/")
    with CaptureQueriesContext(connection) as before:
        client.get("/institutions/")
    for case in cases:
        move(supervisor, case, "verified")
    with CaptureQueriesContext(connection) as after:
        response = client.get("/institutions/")
    assert '<span class="count">3</span>' in response.text
    assert len(page_queries(after)) == len(page_queries(before))


def test_who_chose_not_to_be_told_is_not_told(caseworker, supervisor, ngo_a):
    caseworker.notify_status_changes = False
    caseworker.notify_assignments = False
    caseworker.save()
    case = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    move(supervisor, case, "verified")
    followups.create_task(
        actor=actor(supervisor), case=case, kind=TaskKind.OTHER, due_on=dt.date(2030, 1, 1), assigned_to=caseworker
    )
    assert not Notice.objects.exists() and unread(caseworker) == 0


def test_follow_ups_and_cases_given_by_someone_else_are_notices(caseworker, supervisor, ngo_a):
    colleague = UserFactory(username="colleague", organisation=ngo_a, role=Role.CASEWORKER)
    case = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    followups.create_task(
        actor=actor(supervisor), case=case, kind=TaskKind.OTHER, due_on=dt.date(2030, 1, 1), assigned_to=caseworker
    )
    CaseFactory.create_batch(2, organisation=ngo_a, assigned_to=caseworker)
    followups.reassign_cases(actor=actor(supervisor), from_user=caseworker, to_user=colleague)
    assert Notice.objects.get(user=caseworker).kind == Notice.Kind.TASK_GIVEN
    given = Notice.objects.get(user=colleague)
    assert (given.kind, given.count, given.by) == (Notice.Kind.CASES_GIVEN, 3, "supervisor")
    assert unread(colleague) == 1


def test_the_account_page_sets_the_choices(client, caseworker):
    client.force_login(caseworker)
    page = client.get("/accounts/")
    assert 'name="daily_digest"' in page.text
    response = client.post("/accounts/notices/", {"notify_assignments": "on"})
    assert response.status_code == 302
    caseworker.refresh_from_db()
    assert (caseworker.notify_status_changes, caseworker.notify_assignments, caseworker.daily_digest) == (
        False,
        True,
        False,
    )
    # Only these three switches: nothing else of the account moves.
    client.post("/accounts/notices/", {"role": "supervisor", "is_staff": "on", "unread_notices": "99"})
    caseworker.refresh_from_db()
    assert (caseworker.role, caseworker.is_staff, caseworker.unread_notices) == ("caseworker", False, 0)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    received = Inbox()
    controller = Controller(received, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with override_settings(**SMTP_SETTINGS, EMAIL_PORT=controller.port, REGISTER_URL="https://register.example"):
            yield received
    finally:
        controller.stop()


def test_the_daily_digest_counts_and_names_references_only(inbox, caseworker, supervisor, ngo_a, ngo_b):
    today = timezone.localdate()
    caseworker.email = "caseworker@ngo-a.example"
    caseworker.save()
    quiet = UserFactory(username="quiet", organisation=ngo_a, email="quiet@ngo-a.example")  # nothing to tell
    opted_out = UserFactory(username="optedout", organisation=ngo_a, email="out@ngo-a.example", daily_digest=False)
    late = CaseFactory(organisation=ngo_a, assigned_to=caseworker, notes="Seen near the synthetic camp", oblast="UA-43")
    soon = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    Task.objects.create(
        case=late, kind=TaskKind.CHECK_AFTER_RETURN, due_on=today - dt.timedelta(days=2), assigned_to=caseworker
    )
    Task.objects.create(case=soon, kind=TaskKind.OTHER, due_on=today + dt.timedelta(days=3), assigned_to=caseworker)
    Task.objects.create(case=late, kind=TaskKind.OTHER, due_on=today - dt.timedelta(days=9), assigned_to=opted_out)
    Task.objects.create(case=late, kind=TaskKind.OTHER, due_on=today, state=Task.State.DONE, assigned_to=quiet)
    move(supervisor, soon, "verified")  # a notice for the caseworker
    assert send_daily_digests.apply().get() == {"sent": 1, "failed": 0}
    [(to, message)] = inbox.messages
    assert to == ["caseworker@ngo-a.example"]
    body = message.get_body(("plain",)).get_content()
    assert "1 overdue follow-up" in body and "1 follow-up due this week" in body and "1 unread notice" in body
    assert late.reference in body and "https://register.example/" in body
    assert "1 прострочена подальша дія" in body  # Ukrainian first, then English
    # No case facts: no note, no oblast, no status, no kind of follow-up.
    for fact in ("synthetic camp", "Crimea", "UA-43", "Verified", "Check on the child", soon.reference):
        assert fact not in body, fact
    assert message["Subject"] and late.reference not in message["Subject"]


def test_a_digest_the_server_refuses_is_counted_and_the_others_go(inbox, caseworker, ngo_a):
    today = timezone.localdate()
    other = UserFactory(username="other", organisation=ngo_a, email="other@ngo-a.example")
    caseworker.email = "caseworker@ngo-a.example"
    caseworker.save()
    for user in (caseworker, other):
        Task.objects.create(
            case=CaseFactory(organisation=ngo_a, assigned_to=user), kind=TaskKind.OTHER, due_on=today, assigned_to=user
        )
    with override_settings(EMAIL_PORT=free_port()):  # nobody listens there
        assert send_daily_digests.apply().get() == {"sent": 0, "failed": 2}
    assert inbox.messages == []
    assert send_daily_digests.apply().get() == {"sent": 2, "failed": 0}
