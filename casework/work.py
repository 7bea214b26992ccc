"""Reads for a caseworker's day: "my work" on the home page, a case's follow-ups, and a supervisor's team view.

Scoped like every read of cases (casework.selectors.visible_cases): a task is
seen only through a case of the reader's organisation. Each list costs the
same few queries whatever the number of tasks (tests/test_views_my_work.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from accounts import permissions
from accounts.models import User
from casework.models import CLOSED_STATUSES, Case, StatusChange
from casework.selectors import visible_cases
from casework.task_models import Task

WEEK = dt.timedelta(days=7)
# Status changes by someone else on the reader's cases, this far back.
RECENT_CHANGE_DAYS = 14


@dataclass(frozen=True)
class MyWork:
    overdue_count: int
    due_soon_count: int
    open_count: int
    overdue: list[Task]
    due_soon: list[Task]
    changed_by_others: list[StatusChange]

    @property
    def cases(self) -> list[Case]:
        """Every case the section names (for the access log)."""
        shown = {task.case_id: task.case for task in (*self.overdue, *self.due_soon)}
        shown.update((change.case_id, change.case) for change in self.changed_by_others)
        return list(shown.values())


def visible_tasks(user: User) -> QuerySet[Task]:
    return Task.objects.filter(case__in=visible_cases(user))


def my_work(user: User, *, today: dt.date, now: dt.datetime, limit: int = 8) -> MyWork:
    """Four queries whatever the number of tasks: the counts, the overdue, the due this week, the changes."""
    mine = visible_tasks(user).filter(assigned_to=user, state=Task.State.OPEN)
    week_end = today + WEEK
    counts = mine.aggregate(
        open=Count("pk"),
        overdue=Count("pk", filter=Q(due_on__lt=today)),
        due_soon=Count("pk", filter=Q(due_on__gte=today, due_on__lt=week_end)),
    )
    rows = mine.select_related("case").order_by("due_on", "id")
    changes = list(
        StatusChange.objects.filter(
            case__in=visible_cases(user).filter(assigned_to=user),
            recorded_at__gte=now - dt.timedelta(days=RECENT_CHANGE_DAYS),
        )
        .exclude(recorded_by=user)
        .select_related("case", "recorded_by", "via")
        .order_by("-recorded_at", "-id")[:limit]
    )
    return MyWork(
        overdue_count=counts["overdue"] or 0,
        due_soon_count=counts["due_soon"] or 0,
        open_count=counts["open"] or 0,
        overdue=list(rows.filter(due_on__lt=today)[:limit]),
        due_soon=list(rows.filter(due_on__gte=today, due_on__lt=week_end)[:limit]),
        changed_by_others=changes,
    )


def case_tasks(case: Case) -> list[Task]:
    """A case's follow-ups, open ones first by due date, then the closed ones, newest first."""
    tasks = list(Task.objects.filter(case=case).select_related("assigned_to", "done_by", "created_by"))
    open_ = sorted((t for t in tasks if t.is_open), key=lambda t: (t.due_on, t.pk))
    closed = sorted((t for t in tasks if not t.is_open), key=lambda t: t.done_at or t.created_at, reverse=True)
    return open_ + closed


def assignable_people(organisation_id: int) -> QuerySet[User]:
    """Who may be given cases and follow-ups: the organisation's active caseworkers and supervisors."""
    roles = list(permissions.CASE_EDITOR_ROLES)
    return User.objects.filter(organisation_id=organisation_id, is_active=True, role__in=roles).order_by("username")


@dataclass(frozen=True)
class TeamRow:
    person: User
    open_cases: int
    open_tasks: int
    overdue_tasks: int


def team(user: User, *, today: dt.date) -> list[TeamRow]:
    """Per caseworker of the reader's organisation: open cases, open and overdue follow-ups (three queries)."""
    people = list(assignable_people(user.organisation_id))
    cases = (
        visible_cases(user)
        .exclude(status__in=CLOSED_STATUSES)
        .filter(assigned_to__isnull=False)
        .values("assigned_to")
        .annotate(n=Count("pk"))
        .order_by()
    )
    case_counts = {row["assigned_to"]: row["n"] for row in cases}
    tasks = (
        visible_tasks(user)
        .filter(state=Task.State.OPEN, assigned_to__isnull=False)
        .values("assigned_to")
        .annotate(n=Count("pk"), overdue=Count("pk", filter=Q(due_on__lt=today)))
        .order_by()
    )
    task_counts = {row["assigned_to"]: (row["n"], row["overdue"]) for row in tasks}
    return [
        TeamRow(
            person=person,
            open_cases=case_counts.get(person.pk, 0),
            open_tasks=task_counts.get(person.pk, (0, 0))[0],
            overdue_tasks=task_counts.get(person.pk, (0, 0))[1],
        )
        for person in people
    ]
