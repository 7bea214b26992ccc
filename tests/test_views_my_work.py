"""My work on the home page, follow-ups on the case page, the team view and the rules page."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from casework import followups, services
from casework.models import AccessLog, Case, CaseEdit, FollowUpRule, Task, TaskKind
from partners.models import Share
from tests.factories import CaseFactory, UserFactory
from tests.test_views_home import page_queries


def task(case, user, due, kind=TaskKind.OTHER, **kwargs):
    return Task.objects.create(case=case, kind=kind, due_on=due, assigned_to=user, **kwargs)


def test_my_work_lists_my_overdue_and_this_weeks_follow_ups_only(client, caseworker, ngo_a, ngo_b, caseworker_b):
    today = timezone.localdate()
    colleague = UserFactory(username="colleague", organisation=ngo_a)
    mine = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    theirs = CaseFactory(organisation=ngo_a, assigned_to=colleague)
    foreign = CaseFactory(organisation=ngo_b, assigned_to=caseworker_b)
    overdue = task(mine, caseworker, today - dt.timedelta(days=3))
    soon = task(mine, caseworker, today + dt.timedelta(days=2), kind=TaskKind.CHECK_AFTER_RETURN)
    task(mine, caseworker, today + dt.timedelta(days=30))  # later: counted as open only
    task(mine, caseworker, today - dt.timedelta(days=9), state=Task.State.DONE)  # closed: not listed
    task(theirs, colleague, today - dt.timedelta(days=1))
    task(foreign, caseworker_b, today - dt.timedelta(days=1))
    client.force_login(caseworker)
    response = client.get("/")
    work = response.context["work"]
    assert (work.overdue_count, work.due_soon_count, work.open_count) == (1, 1, 3)
    assert work.overdue == [overdue] and work.due_soon == [soon]
    assert "My work" in response.text and mine.reference in response.text
    assert theirs.reference not in response.text and foreign.reference not in response.text
    # The page names the case: logged as listed, once.
    assert AccessLog.objects.filter(case=mine, action="list", user=caseworker).count() == 1


def test_my_work_shows_changes_by_others_and_shares_that_end_soon(client, caseworker, supervisor, ngo_a, ngo_b):
    mine = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    by_me = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    services.change_status(
        case=mine, actor=services.Actor.for_user(supervisor), to_status="verified",
        occurred_on=dt.date(2023, 2, 1), expected_version=mine.version,
    )  # fmt: skip
    services.change_status(
        case=by_me, actor=services.Actor.for_user(caseworker), to_status="verified",
        occurred_on=dt.date(2023, 2, 1), expected_version=by_me.version,
    )  # fmt: skip
    Share.objects.create(case=by_me, owner=ngo_a, partner=ngo_b, expires_at=timezone.now() + dt.timedelta(days=3))
    client.force_login(caseworker)
    response = client.get("/")
    assert [change.case for change in response.context["work"].changed_by_others] == [mine]
    assert "Shares that end soon" in response.text
    assert f'href="/cases/{by_me.reference}/#sharing"' in response.text


def test_my_work_costs_the_same_queries_for_one_task_or_many(client, caseworker, supervisor, ngo_a, ngo_b):
    today = timezone.localdate()
    first = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    task(first, caseworker, today - dt.timedelta(days=1))
    client.force_login(caseworker)
    client.get("/")

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    one, _ = count()
    for n, case in enumerate(CaseFactory.create_batch(12, organisation=ngo_a, assigned_to=caseworker)):
        task(case, caseworker, today - dt.timedelta(days=n + 1))
        task(case, caseworker, today + dt.timedelta(days=n % 7))
        services.change_status(
            case=case, actor=services.Actor.for_user(supervisor), to_status="verified",
            occurred_on=dt.date(2023, 2, 1), expected_version=case.version,
        )  # fmt: skip
        Share.objects.create(case=case, owner=ngo_a, partner=ngo_b, expires_at=timezone.now() + dt.timedelta(days=2))
    many, sql = count()
    work = client.get("/").context["work"]
    assert work.overdue_count == 13 and len(work.overdue) == 8  # the first eight; the page of all has the rest
    assert many == one, sql


def test_a_caseworker_adds_a_follow_up_and_marks_it_done(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    client.force_login(caseworker)
    response = client.post(
        f"/cases/{case.reference}/follow-ups/",
        {"kind": "other", "due_on": "2030-01-15", "assigned_to": caseworker.pk, "note": "Ask the partner NGO"},
    )
    assert response.status_code == 302
    added = Task.objects.get(case=case)
    assert (added.due_on, added.assigned_to, added.created_by, added.note) == (
        dt.date(2030, 1, 15),
        caseworker,
        caseworker,
        "Ask the partner NGO",
    )
    page = client.get(f"/cases/{case.reference}/")
    assert "Ask the partner NGO" in page.text and "Mark done" in page.text
    response = client.post(f"/follow-ups/{added.pk}/done/", {"note": "Answered"})
    assert response.status_code == 302 and response["Location"].endswith(f"/cases/{case.reference}/#follow-ups")
    added.refresh_from_db()
    assert added.state == Task.State.DONE and added.done_by == caseworker
    # Again: refused with a message, nothing changes, no 500.
    response = client.post(f"/follow-ups/{added.pk}/done/", follow=True)
    assert "already closed" in response.text


def test_bad_follow_up_input_is_refused_next_to_its_field(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    client.force_login(caseworker)
    for data in (
        {"kind": "other", "due_on": "not a date"},
        {"kind": "nonsense", "due_on": "2030-01-01"},
        {"kind": "other", "due_on": "2030-01-01", "note": "call +380 67 123 45 67"},
        {"kind": "other", "due_on": "2199-01-01"},
        {"kind": "other", "due_on": "2030-01-01", "assigned_to": "999999"},
        {"kind": "other", "due_on": "2030-01-01", "note": "x" * 5000},
    ):
        response = client.post(f"/cases/{case.reference}/follow-ups/", data)
        assert response.status_code == 400, data
        assert 'class="errorlist' in response.text
    assert not Task.objects.filter(case=case).exists()


def test_another_organisations_case_and_task_are_not_found(client, caseworker_b, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    other = task(case, caseworker, dt.date(2030, 1, 1))
    client.force_login(caseworker_b)
    assert (
        client.post(f"/cases/{case.reference}/follow-ups/", {"kind": "other", "due_on": "2030-01-01"}).status_code
        == 404
    )
    assert client.post(f"/follow-ups/{other.pk}/done/").status_code == 404
    other.refresh_from_db()
    assert other.is_open and Task.objects.count() == 1


def test_an_analyst_cannot_work_on_follow_ups(client, analyst, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    other = task(case, caseworker, dt.date(2030, 1, 1))
    client.force_login(analyst)
    assert client.post(f"/follow-ups/{other.pk}/done/").status_code == 403
    assert client.get("/team/").status_code == 403


def test_the_team_view_counts_per_person_and_refuses_caseworkers(client, supervisor, caseworker, ngo_a, ngo_b):
    today = timezone.localdate()
    for case in CaseFactory.create_batch(3, organisation=ngo_a, assigned_to=caseworker):
        task(case, caseworker, today - dt.timedelta(days=1))
    CaseFactory(organisation=ngo_a, assigned_to=caseworker, status="reunified")  # closed
    outsider = UserFactory(username="outsider", organisation=ngo_b)
    task(CaseFactory(organisation=ngo_b, assigned_to=outsider), outsider, today - dt.timedelta(days=1))
    client.force_login(caseworker)
    assert client.get("/team/").status_code == 403
    client.force_login(supervisor)
    response = client.get("/team/")
    rows = {row.person.username: row for row in response.context["rows"]}
    assert (rows["caseworker"].open_cases, rows["caseworker"].open_tasks, rows["caseworker"].overdue_tasks) == (3, 3, 3)
    assert "outsider" not in rows and "outsider" not in response.text


def test_the_team_view_costs_the_same_queries_for_few_or_many(client, supervisor, ngo_a):
    client.force_login(supervisor)
    client.get("/team/")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/team/").status_code == 200
        return len(page_queries(queries))

    one = count()
    for n in range(8):
        person = UserFactory(username=f"worker{n}", organisation=ngo_a)
        for case in CaseFactory.create_batch(2, organisation=ngo_a, assigned_to=person):
            task(case, person, dt.date(2024, 1, 1))
    assert count() == one


def test_a_supervisor_hands_over_every_open_case_with_its_follow_ups(client, supervisor, caseworker, ngo_a):
    colleague = UserFactory(username="colleague", organisation=ngo_a, role=Role.CASEWORKER)
    cases = CaseFactory.create_batch(3, organisation=ngo_a, assigned_to=caseworker)
    closed = CaseFactory(organisation=ngo_a, assigned_to=caseworker, status="reunified")
    tasks = [task(case, caseworker, dt.date(2030, 1, 1)) for case in cases]
    client.force_login(supervisor)
    response = client.post("/team/", {"from_user": caseworker.pk, "to_user": colleague.pk})
    assert response.status_code == 302
    assert set(Case.objects.filter(assigned_to=colleague)) == set(cases)
    assert Case.objects.get(pk=closed.pk).assigned_to == caseworker
    assert {t.assigned_to_id for t in Task.objects.filter(pk__in=[t.pk for t in tasks])} == {colleague.pk}
    assert all(Case.objects.get(pk=case.pk).version == case.version + 1 for case in cases)
    assert CaseEdit.objects.filter(case__in=cases, fields=["assigned_to"], edited_by=supervisor).count() == 3
    assert AccessLog.objects.filter(action=AccessLog.Action.REASSIGN, case__in=cases).count() == 3


def test_bulk_reassignment_refuses_another_organisations_people(client, supervisor, caseworker, caseworker_b, ngo_a):
    CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    client.force_login(supervisor)
    for data in (
        {"from_user": caseworker.pk, "to_user": caseworker_b.pk},
        {"from_user": caseworker_b.pk, "to_user": caseworker.pk},
        {"from_user": caseworker.pk, "to_user": caseworker.pk},
        {"from_user": "x", "to_user": ""},
    ):
        assert client.post("/team/", data).status_code == 400, data
    assert not Case.objects.filter(assigned_to=caseworker_b).exists()
    assert not AccessLog.objects.filter(action=AccessLog.Action.REASSIGN).exists()
    client.force_login(caseworker)
    assert client.post("/team/", {"from_user": caseworker.pk, "to_user": supervisor.pk}).status_code == 403


def test_a_supervisor_edits_the_rules_and_bad_input_changes_nothing(client, supervisor, caseworker):
    rules = {(r.kind, r.days): r for r in followups.organisation_rules(supervisor.organisation_id)}
    verify = rules[(TaskKind.VERIFY_REPORT, 14)]
    client.force_login(caseworker)
    assert client.get("/team/rules/").status_code == 403
    client.force_login(supervisor)
    assert client.get("/team/rules/").status_code == 200
    form = {f"days_{r.pk}": r.days for r in rules.values()} | {f"active_{r.pk}": "1" for r in rules.values()}
    for bad in (
        {f"days_{verify.pk}": "soon"},
        {f"days_{verify.pk}": "0"},
        {"new-kind": "other", "new-days": "5"},
        {"new-kind": TaskKind.VERIFY_REPORT},  # a kind without its days
        {"new-days": "5"},  # days without a kind
        {"new-kind": TaskKind.VERIFY_REPORT, "new-days": "99999"},
    ):
        assert client.post("/team/rules/", form | bad).status_code == 400
    assert FollowUpRule.objects.get(pk=verify.pk).days == 14
    response = client.post(
        "/team/rules/",
        form | {f"days_{verify.pk}": "10", "new-kind": TaskKind.CHECK_AFTER_RETURN, "new-days": "365"},
    )
    assert response.status_code == 302
    now = FollowUpRule.objects.filter(organisation=supervisor.organisation)
    form = {f"days_{r.pk}": r.days for r in now} | {f"active_{r.pk}": "1" for r in now}
    del form[f"active_{rules[(TaskKind.REVIEW_IDLE, 90)].pk}"]
    assert client.post("/team/rules/", form).status_code == 302
    assert sorted(
        FollowUpRule.objects.filter(organisation=supervisor.organisation).values_list("kind", "days", "is_active")
    ) == sorted(
        [
            (TaskKind.VERIFY_REPORT, 10, True),
            (TaskKind.CHECK_AFTER_RETURN, 30, True),
            (TaskKind.CHECK_AFTER_RETURN, 90, True),
            (TaskKind.CHECK_AFTER_RETURN, 180, True),
            (TaskKind.CHECK_AFTER_RETURN, 365, True),
            (TaskKind.REVIEW_IDLE, 90, False),
        ]
    )


def test_the_page_of_all_my_follow_ups_pages_them_most_overdue_first(client, caseworker, ngo_a, ngo_b, caseworker_b):
    today = timezone.localdate()
    cases = CaseFactory.create_batch(55, organisation=ngo_a, assigned_to=caseworker)
    for n, case in enumerate(cases):
        task(case, caseworker, today + dt.timedelta(days=n - 3))
    task(cases[0], caseworker, today - dt.timedelta(days=400), state=Task.State.DONE)
    foreign = CaseFactory(organisation=ngo_b, assigned_to=caseworker_b)
    task(foreign, caseworker_b, today - dt.timedelta(days=1))
    client.force_login(caseworker)
    first = client.get("/follow-ups/")
    assert first.status_code == 200
    listed = list(first.context["page"].object_list)
    assert len(listed) == 50 and listed[0].case == cases[0] and listed[0].due_on == today - dt.timedelta(days=3)
    assert foreign.reference not in first.text and "Overdue" in first.text
    assert len(client.get("/follow-ups/?page=2").context["page"].object_list) == 5
    assert client.get("/follow-ups/?page=nonsense").status_code == 200
    assert AccessLog.objects.filter(user=caseworker, action="list", case=cases[0]).exists()
