"""Follow-ups: the organisation's rules, the tasks they make, and tasks made and closed by hand.

The status service (casework.services) calls ``after_case_created`` and
``after_status_change`` inside the transaction that records the change, so a
task is never missing for a recorded change nor left behind by a rolled-back
one. The daily beat task calls ``review_idle_cases``. Every other write to a
task goes through the functions below; views are doors onto them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.models import User
from casework import notices
from casework.audit import log_access
from casework.models import CLOSED_STATUSES, RETURNED_STATUSES, AccessLog, Case, Status, StatusChange
from casework.screening import screen_text
from casework.task_models import RULE_KINDS, FollowUpRule, Task, TaskKind

if TYPE_CHECKING:
    from casework.services import Actor

# DESIGN.md section 13: verify a new report within 14 days; check on a returned child after 30, 90 and
# 180 days; review a case with no status change for 90 days.
DEFAULT_RULES: tuple[tuple[str, int], ...] = (
    (TaskKind.VERIFY_REPORT, 14),
    (TaskKind.CHECK_AFTER_RETURN, 30),
    (TaskKind.CHECK_AFTER_RETURN, 90),
    (TaskKind.CHECK_AFTER_RETURN, 180),
    (TaskKind.REVIEW_IDLE, 90),
)
MAX_RULE_DAYS = 3650
MAX_NOTE_LENGTH = 2000
# How far from today a task made by hand may fall due.
MAX_DUE_YEARS = 5


class TaskNotFound(Exception):
    """No such task for this actor (another organisation's task is absent, not forbidden)."""


def organisation_rules(organisation_id: int) -> list[FollowUpRule]:
    """The organisation's rules; an organisation that never had any gets the defaults."""
    rules = list(FollowUpRule.objects.filter(organisation_id=organisation_id))
    if not rules:
        FollowUpRule.objects.bulk_create(
            [FollowUpRule(organisation_id=organisation_id, kind=kind, days=days) for kind, days in DEFAULT_RULES],
            ignore_conflicts=True,  # two first changes at once make them once
        )
        rules = list(FollowUpRule.objects.filter(organisation_id=organisation_id))
    return rules


def _active_rules(organisation_id: int, kind: str) -> list[FollowUpRule]:
    return [rule for rule in organisation_rules(organisation_id) if rule.kind == kind and rule.is_active]


def _close(tasks: Any, *, state: str, by: User | None, now: dt.datetime) -> int:
    return int(tasks.filter(state=Task.State.OPEN).update(state=state, done_at=now, done_by=by))


# --- applied by the status service ---------------------------------------------------------


def after_case_created(*, case: Case) -> None:
    """A new report: verify it within the rule's days."""
    Task.objects.bulk_create(
        [
            Task(
                case=case,
                kind=TaskKind.VERIFY_REPORT,
                due_on=case.reported_on + dt.timedelta(days=rule.days),
                assigned_to_id=case.assigned_to_id,
                rule=rule,
            )
            for rule in _active_rules(case.organisation_id, TaskKind.VERIFY_REPORT)
        ]
    )


def after_status_change(*, case: Case, change: StatusChange, user: User | None) -> None:
    """Apply the rules to one recorded move (called under the case's lock, in its transaction)."""
    now = change.recorded_at
    notices.status_changed(case=case, change=change, by_user=user, by_label=change.recorded_via)
    open_tasks = Task.objects.filter(case=case, state=Task.State.OPEN)
    by_rule = open_tasks.filter(created_by__isnull=True)
    was_returned = change.from_status in RETURNED_STATUSES
    is_returned = change.to_status in RETURNED_STATUSES
    if change.to_status in {Status.DUPLICATE, Status.WITHDRAWN}:
        # Nothing more to follow on this record: what the rules asked is no longer needed.
        _close(by_rule, state=Task.State.CANCELLED, by=user, now=now)
        return
    if was_returned and not is_returned:
        # A correction that undoes the return: its check-ins are no longer due.
        _close(by_rule.filter(kind=TaskKind.CHECK_AFTER_RETURN), state=Task.State.CANCELLED, by=user, now=now)
    if change.from_status == Status.REPORTED and not change.is_correction:
        # The report moved on: it was verified.
        _close(open_tasks.filter(kind=TaskKind.VERIFY_REPORT), state=Task.State.DONE, by=user, now=now)
    # The case moved: the review of a case without change is answered.
    _close(by_rule.filter(kind=TaskKind.REVIEW_IDLE), state=Task.State.DONE, by=user, now=now)
    if is_returned and not was_returned:
        Task.objects.bulk_create(
            [
                Task(
                    case=case,
                    kind=TaskKind.CHECK_AFTER_RETURN,
                    due_on=change.occurred_on + dt.timedelta(days=rule.days),
                    assigned_to_id=case.assigned_to_id,
                    rule=rule,
                )
                for rule in _active_rules(case.organisation_id, TaskKind.CHECK_AFTER_RETURN)
            ]
        )


def after_reassignment(*, case_ids: Iterable[int], previous: dict[int, int | None], to_user_id: int | None) -> int:
    """Open tasks move with their case: those of the previous assignee (or of nobody) go to the new one.

    A task someone else was given by hand stays theirs. Returns how many moved.
    """
    moved = 0
    by_previous: dict[int | None, list[int]] = {}
    for case_id in case_ids:
        by_previous.setdefault(previous.get(case_id), []).append(case_id)
    for previous_id, ids in by_previous.items():
        holders = Q(assigned_to__isnull=True) | (Q(assigned_to_id=previous_id) if previous_id else Q())
        moved += Task.objects.filter(Q(case_id__in=ids, state=Task.State.OPEN) & holders).update(
            assigned_to_id=to_user_id
        )
    return moved


def review_idle_cases(*, today: dt.date | None = None) -> int:
    """Daily: a review task on every open case with no status change for the rule's days. Returns how many."""
    today = today or timezone.localdate()
    now = timezone.now()
    made = 0
    organisation_ids = Case.objects.exclude(status__in=CLOSED_STATUSES).values_list("organisation_id", flat=True)
    for organisation_id in sorted(set(organisation_ids)):
        rules = sorted(_active_rules(organisation_id, TaskKind.REVIEW_IDLE), key=lambda rule: rule.days)
        if not rules:
            continue
        rule = rules[0]  # the shortest wait decides
        since = now - dt.timedelta(days=rule.days)
        idle = (
            Case.objects.filter(organisation_id=organisation_id)
            .exclude(status__in=CLOSED_STATUSES)
            .filter(Q(last_change_at__lt=since) | Q(last_change_at__isnull=True, created_at__lt=since))
            .exclude(Exists(Task.objects.filter(case=OuterRef("pk"), kind=TaskKind.REVIEW_IDLE, state="open")))
            .values_list("pk", "assigned_to_id")
        )
        rows = [
            Task(case_id=pk, kind=TaskKind.REVIEW_IDLE, due_on=today, assigned_to_id=assignee, rule=rule)
            for pk, assignee in idle.iterator(chunk_size=2000)
        ]
        # The partial unique index keeps a second open review out if two runs overlap.
        made += len(Task.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True))
    return made


# --- by hand ---------------------------------------------------------------------------------


def _check_note(note: str, errors: dict[str, list[str]]) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        errors.setdefault("note", []).append(
            _("Keep the note under %(limit)s characters.") % {"limit": MAX_NOTE_LENGTH}
        )
    elif note:
        try:
            screen_text(note, field="note")
        except ValidationError as exc:
            errors.setdefault("note", []).extend(exc.message_dict["note"])
    return note


def _log(actor: Actor, case_ids: list[int], action: str, request: Any) -> None:
    log_access(
        action=action,
        door=AccessLog.Door.WEB,
        organisation_id=actor.organisation_id,
        case_ids=case_ids,
        user=actor.user,
        request=request,
    )


def create_task(
    *,
    actor: Actor,
    case: Case,
    kind: str,
    due_on: dt.date | None,
    assigned_to: User | None,
    note: str = "",
    request: Any = None,
) -> Task:
    """A follow-up made by hand on one of the actor's organisation's cases."""
    if actor.user is None or not permissions.can_work_on_tasks(actor.user):
        from casework.services import NotPermitted

        raise NotPermitted(_("Your role cannot make follow-ups."))
    if not actor.is_superuser and case.organisation_id != actor.organisation_id:
        raise TaskNotFound
    errors: dict[str, list[str]] = {}
    if kind not in TaskKind.values:
        errors["kind"] = [_("Choose a kind of follow-up.")]
    today = timezone.localdate()
    if due_on is None:
        errors["due_on"] = [_("Give the date it is due.")]
    elif not (
        today - dt.timedelta(days=365 * MAX_DUE_YEARS) <= due_on <= today + dt.timedelta(days=365 * MAX_DUE_YEARS)
    ):
        errors["due_on"] = [_("Give a due date within %(years)s years of today.") % {"years": MAX_DUE_YEARS}]
    if assigned_to is not None and (assigned_to.organisation_id != case.organisation_id or not assigned_to.is_active):
        errors["assigned_to"] = [_("The follow-up must go to an active member of the case's organisation.")]
    note = _check_note(note, errors)
    if errors:
        raise ValidationError(errors)
    assert due_on is not None
    with transaction.atomic():
        task = Task.objects.create(
            case=case, kind=kind, due_on=due_on, assigned_to=assigned_to, note=note, created_by=actor.user
        )
        notices.task_given(task=task, by=actor.user)
        _log(actor, [case.pk], AccessLog.Action.FOLLOW_UP, request)
    return task


def _task_for_update(*, actor: Actor, task_id: int) -> Task:
    task = Task.objects.select_for_update().select_related("case").filter(pk=task_id).first()
    if task is None or (not actor.is_superuser and task.case.organisation_id != actor.organisation_id):
        raise TaskNotFound
    return task


def complete_task(*, actor: Actor, task_id: int, note: str = "", request: Any = None) -> Task:
    """Mark an open follow-up done (logged); an added note is screened like every free text."""
    if actor.user is None or not permissions.can_work_on_tasks(actor.user):
        from casework.services import NotPermitted

        raise NotPermitted(_("Your role cannot close follow-ups."))
    errors: dict[str, list[str]] = {}
    note = _check_note(note, errors)
    with transaction.atomic():
        task = _task_for_update(actor=actor, task_id=task_id)
        if not task.is_open:
            errors.setdefault("__all__", []).append(_("This follow-up is already closed."))
        if errors:
            raise ValidationError(errors)
        task.state = Task.State.DONE
        task.done_at = timezone.now()
        task.done_by = actor.user
        if note:
            task.note = f"{task.note}\n{note}".strip() if task.note else note
            if len(task.note) > MAX_NOTE_LENGTH:
                raise ValidationError(
                    {"note": [_("Keep the note under %(limit)s characters.") % {"limit": MAX_NOTE_LENGTH}]}
                )
        task.save(update_fields=["state", "done_at", "done_by", "note"])
        _log(actor, [task.case_id], AccessLog.Action.FOLLOW_UP, request)
    return task


# --- the organisation's rules -----------------------------------------------------------------


def update_rules(*, actor: Actor, changes: dict[int, tuple[int, bool]], added: Iterable[tuple[str, int]] = ()) -> None:
    """Change the days and the switch of the organisation's rules, and add rules; supervisors only.

    ``changes``: rule id -> (days, active). Another organisation's rule id is refused as unknown.
    """
    if actor.user is None or not permissions.can_lead_team(actor.user):
        from casework.services import NotPermitted

        raise NotPermitted(_("Only a supervisor may change the organisation's follow-up rules."))
    errors: dict[str, list[str]] = {}
    rules = {rule.pk: rule for rule in organisation_rules(actor.organisation_id)}
    for rule_id, (days, _active) in changes.items():
        if rule_id not in rules:
            errors.setdefault("__all__", []).append(_("Unknown rule."))
        elif not 1 <= days <= MAX_RULE_DAYS:
            errors.setdefault(f"days_{rule_id}", []).append(
                _("Give a number of days from 1 to %(max)s.") % {"max": MAX_RULE_DAYS}
            )
    new_rules = []
    for kind, days in added:
        if kind not in RULE_KINDS:
            errors.setdefault("kind", []).append(_("Choose a kind of follow-up."))
        elif not 1 <= days <= MAX_RULE_DAYS:
            errors.setdefault("days", []).append(_("Give a number of days from 1 to %(max)s.") % {"max": MAX_RULE_DAYS})
        else:
            new_rules.append(FollowUpRule(organisation_id=actor.organisation_id, kind=kind, days=days))
    final = {(rule.kind, changes.get(pk, (rule.days, rule.is_active))[0]) for pk, rule in rules.items()}
    if len(final) < len(rules) or any((rule.kind, rule.days) in final for rule in new_rules):
        errors.setdefault("__all__", []).append(_("Two rules of the same kind cannot have the same number of days."))
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            for rule_id, (days, active) in changes.items():
                FollowUpRule.objects.filter(pk=rule_id).update(days=days, is_active=active)
            FollowUpRule.objects.bulk_create(new_rules)
    except IntegrityError:
        raise ValidationError(
            {"__all__": [_("Two rules of the same kind cannot have the same number of days.")]}
        ) from None


# --- the team ----------------------------------------------------------------------------------


def reassign_cases(*, actor: Actor, from_user: User, to_user: User, request: Any = None) -> int:
    """Give every open case of one member of the team to another, with their follow-ups; supervisors only.

    Each case's version moves on and the edit is recorded (a stale form then says what changed), every
    case is logged. Returns how many cases moved.
    """
    from casework.models import CaseEdit
    from casework.services import NotPermitted

    if actor.user is None or not permissions.can_lead_team(actor.user):
        raise NotPermitted(_("Only a supervisor may reassign cases in bulk."))
    errors: dict[str, list[str]] = {}
    for name, person in (("from_user", from_user), ("to_user", to_user)):
        if person.organisation_id != actor.organisation_id:
            errors[name] = [_("Choose a member of your organisation.")]
    if "to_user" not in errors and not (to_user.is_active and permissions.can_edit_cases(to_user)):
        errors["to_user"] = [_("Cases go to an active caseworker or supervisor.")]
    if not errors and from_user.pk == to_user.pk:
        errors["to_user"] = [_("Choose someone else to give the cases to.")]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        locked = list(
            Case.objects.select_for_update(no_key=True)
            .filter(organisation_id=actor.organisation_id, assigned_to_id=from_user.pk)
            .exclude(status__in=CLOSED_STATUSES)
            .order_by("pk")
            .values_list("pk", "version")
        )
        if not locked:
            return 0
        ids = [pk for pk, _version in locked]
        for start in range(0, len(ids), 1000):
            Case.objects.filter(pk__in=ids[start : start + 1000]).update(
                assigned_to_id=to_user.pk, version=F("version") + 1, updated_at=now
            )
        CaseEdit.objects.bulk_create(
            [
                CaseEdit(case_id=pk, version=version + 1, edited_at=now, edited_by=actor.user, fields=["assigned_to"])
                for pk, version in locked
            ],
            batch_size=1000,
        )
        after_reassignment(case_ids=ids, previous=dict.fromkeys(ids, from_user.pk), to_user_id=to_user.pk)
        _log(actor, ids, AccessLog.Action.REASSIGN, request)
        notices.cases_given(to_user=to_user, count=len(ids), by=actor.user)
    return len(ids)


# --- cases recorded without the status service (bulk writes) ----------------------------------------


def _by_chunks(queryset: Any, field_name: str, ids: Sequence[int] | None) -> Iterator[Any]:
    """``queryset``, or, given ``ids``, its rows for those ids a chunk at a time (SQLite limits parameters)."""
    if ids is None:
        yield queryset
        return
    for start in range(0, len(ids), BACKFILL_CHUNK):
        yield queryset.filter(**{f"{field_name}__in": ids[start : start + BACKFILL_CHUNK]})


BACKFILL_CHUNK = 900


def backfill_rules(*, organisation_id: int, since: dt.date, case_ids: Sequence[int] | None = None) -> int:
    """Make the rule tasks that a history written in bulk (the demo, an import) would have made, for the
    open cases of one organisation (or only those of ``case_ids``: the cases an import just wrote), keeping
    those that fall due on or after ``since``. Returns how many.

    Set-based: a few reads (one per chunk of ids) and bulk inserts whatever the number of cases.
    """
    from django.db.models import Max

    verify = _active_rules(organisation_id, TaskKind.VERIFY_REPORT)
    check_ins = _active_rules(organisation_id, TaskKind.CHECK_AFTER_RETURN)
    rows: list[Task] = []
    reported_cases = Case.objects.filter(organisation_id=organisation_id, status=Status.REPORTED)
    for chunk in _by_chunks(reported_cases, "pk", case_ids):
        for pk, reported_on, assignee in chunk.values_list("pk", "reported_on", "assigned_to_id").iterator(
            chunk_size=2000
        ):
            rows.extend(
                Task(case_id=pk, kind=TaskKind.VERIFY_REPORT, due_on=due, assigned_to_id=assignee, rule=rule)
                for rule in verify
                if (due := reported_on + dt.timedelta(days=rule.days)) >= since
            )
    changes = StatusChange.objects.filter(
        case__organisation_id=organisation_id,
        case__status__in=RETURNED_STATUSES,
        to_status__in=RETURNED_STATUSES,
    ).exclude(from_status__in=RETURNED_STATUSES)
    for chunk in _by_chunks(changes, "case_id", case_ids):
        returns = chunk.values("case_id", "case__assigned_to_id").annotate(returned_on=Max("occurred_on")).order_by()
        for row in returns.iterator(chunk_size=2000):
            rows.extend(
                Task(
                    case_id=row["case_id"],
                    kind=TaskKind.CHECK_AFTER_RETURN,
                    due_on=due,
                    assigned_to_id=row["case__assigned_to_id"],
                    rule=rule,
                )
                for rule in check_ins
                if (due := row["returned_on"] + dt.timedelta(days=rule.days)) >= since
            )
    return len(Task.objects.bulk_create(rows, batch_size=1000))
