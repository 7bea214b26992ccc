"""Follow-ups: the default rules on hand-built timelines, tasks by hand, closing them, and moving with the case."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Role
from casework import followups, services
from casework.models import AccessLog, Case, FollowUpRule, Task, TaskKind
from casework.tasks import review_idle_cases
from tests.factories import CaseFactory, UserFactory

REPORTED = dt.date(2024, 3, 1)


def actor(user):
    return services.Actor.for_user(user)


def new_case(user, **values):
    return services.create_case(
        actor=actor(user),
        values={"sex": "F", "birth_year": 2012, "oblast": "UA-65", "reported_on": REPORTED, **values},
    )


def move(user, case, to, on, **kwargs):
    case.refresh_from_db()
    return services.change_status(
        case=case, actor=actor(user), to_status=to, occurred_on=on, expected_version=case.version, **kwargs
    )


def open_tasks(case, kind=None):
    tasks = Task.objects.filter(case=case, state=Task.State.OPEN)
    if kind:
        tasks = tasks.filter(kind=kind)
    return sorted(tasks.values_list("kind", "due_on"))


def test_it_gives_a_new_report_a_verification_due_in_14_days(caseworker):
    case = new_case(caseworker, assigned_to=caseworker)
    [task] = Task.objects.filter(case=case)
    assert (task.kind, task.due_on, task.assigned_to, task.state) == (
        TaskKind.VERIFY_REPORT,
        REPORTED + dt.timedelta(days=14),
        caseworker,
        Task.State.OPEN,
    )
    assert task.by_rule


def test_it_closes_the_verification_when_the_report_moves_on(caseworker):
    case = new_case(caseworker)
    move(caseworker, case, "verified", dt.date(2024, 3, 5))
    [task] = Task.objects.filter(case=case)
    assert task.state == Task.State.DONE and task.done_by == caseworker


def test_a_return_creates_three_check_ins_at_30_90_and_180_days(caseworker):
    case = new_case(caseworker, assigned_to=caseworker)
    move(caseworker, case, "located", dt.date(2024, 4, 1))
    returned_on = dt.date(2024, 6, 10)
    move(caseworker, case, "repatriated", returned_on, via=None)
    assert open_tasks(case) == [
        (TaskKind.CHECK_AFTER_RETURN, returned_on + dt.timedelta(days=30)),
        (TaskKind.CHECK_AFTER_RETURN, returned_on + dt.timedelta(days=90)),
        (TaskKind.CHECK_AFTER_RETURN, returned_on + dt.timedelta(days=180)),
    ]
    assert set(Task.objects.filter(kind=TaskKind.CHECK_AFTER_RETURN).values_list("assigned_to", flat=True)) == {
        caseworker.pk
    }
    # Reunified after repatriated is still returned: no second set of check-ins.
    move(caseworker, case, "reunified", dt.date(2024, 6, 20))
    assert len(open_tasks(case, TaskKind.CHECK_AFTER_RETURN)) == 3


def test_a_correction_that_undoes_the_return_closes_its_check_ins(caseworker, supervisor):
    case = new_case(caseworker)
    move(caseworker, case, "repatriated", dt.date(2024, 5, 1))
    handmade = followups.create_task(
        actor=actor(caseworker), case=case, kind=TaskKind.OTHER, due_on=dt.date(2024, 7, 1), assigned_to=caseworker
    )
    move(supervisor, case, "located", dt.date(2024, 5, 2), note="Entered on the wrong case")
    assert open_tasks(case, TaskKind.CHECK_AFTER_RETURN) == []
    closed = Task.objects.filter(case=case, kind=TaskKind.CHECK_AFTER_RETURN)
    assert closed.count() == 3
    assert set(closed.values_list("state", "done_by")) == {(Task.State.CANCELLED, supervisor.pk)}
    # The caseworker's own task is theirs to close.
    handmade.refresh_from_db()
    assert handmade.is_open
    # The child really comes home later: a new set of check-ins from that date.
    move(caseworker, case, "repatriated", dt.date(2024, 8, 1))
    assert [due for _kind, due in open_tasks(case, TaskKind.CHECK_AFTER_RETURN)] == [
        dt.date(2024, 8, 31),
        dt.date(2024, 10, 30),
        dt.date(2025, 1, 28),
    ]


def test_a_correction_within_the_returned_statuses_keeps_the_check_ins(caseworker, supervisor):
    case = new_case(caseworker)
    move(caseworker, case, "reunified", dt.date(2024, 5, 1))
    move(supervisor, case, "repatriated", dt.date(2024, 5, 1), note="Not yet with the family")
    assert len(open_tasks(case, TaskKind.CHECK_AFTER_RETURN)) == 3


def test_withdrawing_a_case_cancels_what_the_rules_asked(caseworker, supervisor):
    case = new_case(caseworker)
    move(supervisor, case, "withdrawn", dt.date(2024, 3, 2), note="Report found wrong")
    assert open_tasks(case) == []
    assert Task.objects.get(case=case).state == Task.State.CANCELLED


def test_the_organisation_chooses_its_rules(caseworker, supervisor):
    rules = {(rule.kind, rule.days): rule for rule in followups.organisation_rules(caseworker.organisation_id)}
    followups.update_rules(
        actor=actor(supervisor),
        changes={
            rules[(TaskKind.VERIFY_REPORT, 14)].pk: (7, True),
            rules[(TaskKind.CHECK_AFTER_RETURN, 180)].pk: (180, False),
        },
        added=[(TaskKind.CHECK_AFTER_RETURN, 365)],
    )
    case = new_case(caseworker)
    assert open_tasks(case) == [(TaskKind.VERIFY_REPORT, REPORTED + dt.timedelta(days=7))]
    move(caseworker, case, "repatriated", dt.date(2024, 4, 1))
    assert [due for _kind, due in open_tasks(case, TaskKind.CHECK_AFTER_RETURN)] == [
        dt.date(2024, 5, 1),
        dt.date(2024, 6, 30),
        dt.date(2025, 4, 1),
    ]


def test_rules_refuse_bad_input_and_other_roles_and_change_nothing(caseworker, supervisor, caseworker_b):
    rules = followups.organisation_rules(caseworker.organisation_id)
    first = rules[0]
    with pytest.raises(services.NotPermitted):
        followups.update_rules(actor=actor(caseworker), changes={first.pk: (3, True)})
    for changes, added in [
        ({first.pk: (0, True)}, []),
        ({first.pk: (99999, True)}, []),
        ({}, [("other", 10)]),
        ({}, [(TaskKind.CHECK_AFTER_RETURN, 30)]),  # the same as an existing rule
    ]:
        with pytest.raises(ValidationError):
            followups.update_rules(actor=actor(supervisor), changes=changes, added=added)
    # Another organisation's rule is unknown to this supervisor.
    other = followups.organisation_rules(caseworker_b.organisation_id)[0]
    with pytest.raises(ValidationError):
        followups.update_rules(actor=actor(supervisor), changes={other.pk: (3, False)})
    assert sorted((r.kind, r.days, r.is_active) for r in FollowUpRule.objects.all()) == sorted(
        [(kind, days, True) for kind, days in followups.DEFAULT_RULES] * 2
    )


def test_the_daily_review_finds_cases_with_no_change_for_90_days_once(caseworker, ngo_a, ngo_b):
    long_ago = timezone.now() - dt.timedelta(days=100)
    idle = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    recent = CaseFactory(organisation=ngo_a)
    moved_long_ago = CaseFactory(organisation=ngo_a, last_change_at=long_ago)
    closed = CaseFactory(organisation=ngo_a, status="reunified", last_change_at=long_ago)
    elsewhere = CaseFactory(organisation=ngo_b)
    Case.objects.filter(pk__in=[idle.pk, elsewhere.pk, moved_long_ago.pk, closed.pk]).update(created_at=long_ago)
    assert review_idle_cases.apply().get() == 3
    reviews = Task.objects.filter(kind=TaskKind.REVIEW_IDLE)
    assert set(reviews.values_list("case", flat=True)) == {idle.pk, moved_long_ago.pk, elsewhere.pk}
    assert reviews.get(case=idle).assigned_to == caseworker
    assert reviews.get(case=idle).due_on == timezone.localdate()
    assert recent.pk not in reviews.values_list("case", flat=True)
    # The next day: still one open review per case.
    assert followups.review_idle_cases() == 0
    assert reviews.count() == 3


def test_a_status_change_answers_the_review(caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - dt.timedelta(days=100))
    followups.review_idle_cases()
    move(caseworker, case, "verified", dt.date(2023, 2, 1))
    assert Task.objects.get(case=case, kind=TaskKind.REVIEW_IDLE).state == Task.State.DONE


def test_completing_a_task_is_logged_and_happens_once(caseworker):
    case = new_case(caseworker)
    task = Task.objects.get(case=case)
    before = AccessLog.objects.filter(action=AccessLog.Action.FOLLOW_UP).count()
    done = followups.complete_task(actor=actor(caseworker), task_id=task.pk, note="Confirmed with the partner NGO")
    assert done.state == Task.State.DONE and done.done_by == caseworker and done.done_at is not None
    assert done.note == "Confirmed with the partner NGO"
    log = AccessLog.objects.filter(action=AccessLog.Action.FOLLOW_UP)
    assert log.count() == before + 1 and log.first().case_id == case.pk and log.first().user == caseworker
    with pytest.raises(ValidationError):
        followups.complete_task(actor=actor(caseworker), task_id=task.pk)
    assert log.count() == before + 1


def test_a_note_with_personal_data_is_refused_and_nothing_changes(caseworker):
    case = new_case(caseworker)
    task = Task.objects.get(case=case)
    with pytest.raises(ValidationError) as info:
        followups.complete_task(actor=actor(caseworker), task_id=task.pk, note="Call mother on +380 67 123 4567")
    assert "note" in info.value.message_dict
    task.refresh_from_db()
    assert task.is_open and task.note == ""
    with pytest.raises(ValidationError):
        followups.create_task(
            actor=actor(caseworker),
            case=case,
            kind=TaskKind.OTHER,
            due_on=dt.date(2024, 5, 1),
            assigned_to=None,
            note="aunt@example.com",
        )
    assert Task.objects.filter(case=case).count() == 1


def test_another_organisation_cannot_touch_tasks(caseworker, caseworker_b, analyst):
    case = new_case(caseworker)
    task = Task.objects.get(case=case)
    with pytest.raises(followups.TaskNotFound):
        followups.complete_task(actor=actor(caseworker_b), task_id=task.pk)
    with pytest.raises(followups.TaskNotFound):
        followups.create_task(
            actor=actor(caseworker_b), case=case, kind=TaskKind.OTHER, due_on=dt.date(2024, 5, 1), assigned_to=None
        )
    with pytest.raises(services.NotPermitted):
        followups.complete_task(actor=actor(analyst), task_id=task.pk)
    # Nor give a task to another organisation's caseworker.
    with pytest.raises(ValidationError) as info:
        followups.create_task(
            actor=actor(caseworker),
            case=case,
            kind=TaskKind.OTHER,
            due_on=dt.date(2024, 5, 1),
            assigned_to=caseworker_b,
        )
    assert "assigned_to" in info.value.message_dict
    task.refresh_from_db()
    assert task.is_open


def test_tasks_move_with_the_case_when_it_is_reassigned(caseworker, ngo_a):
    colleague = UserFactory(username="colleague", organisation=ngo_a, role=Role.CASEWORKER)
    supervisor_task_owner = UserFactory(username="lead", organisation=ngo_a, role=Role.SUPERVISOR)
    case = new_case(caseworker, assigned_to=caseworker)
    other = followups.create_task(
        actor=actor(caseworker),
        case=case,
        kind=TaskKind.OTHER,
        due_on=dt.date(2024, 5, 1),
        assigned_to=supervisor_task_owner,
    )
    case.refresh_from_db()
    services.update_case(
        case=case, actor=actor(caseworker), expected_version=case.version, values={"assigned_to": colleague}
    )
    assert Task.objects.get(case=case, kind=TaskKind.VERIFY_REPORT).assigned_to == colleague
    other.refresh_from_db()
    assert other.assigned_to == supervisor_task_owner  # given to someone by hand: stays theirs
