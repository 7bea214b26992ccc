"""Lists to intermediaries: compose, send, answer, close (DESIGN.md section 12).

A list is a draft until sent; then its items are fixed. Sending shares every
listed case with the intermediary (scope ``answer``) unless a live share
already gives it access; closing ends those ``answer`` shares unless another
open list to the same intermediary still holds the case. An answer is one
row of an append-only trail; "located" and "returned" move the case through
casework's status service in the same transaction, unless the case is already
as far or further (or on a side status).

Locks, always in this order: the list row, then the case row (the status
service locks the case itself; a concurrent status change waits for the
answer, then finds its version stale: no lost update).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts.models import ApiToken, Organisation, Role, User
from accounts.permissions import (
    can_compose_lists,
    can_record_answers,
    token_can_record_answers,
)
from casework import audit_chain
from casework import services as case_services
from casework.audit import log_access
from casework.models import MAIN_PATH, AccessLog, Case, Status, StatusChange
from casework.screening import screen_text
from partners.models import AnswerKind, CaseList, ListAnswer, ListEvent, ListItem, ListState, Share, ShareScope

# One list at most this long: the ICRC's lists run to about 19,000 children.
MAX_LIST_ITEMS = 25_000
# The answers that move the case, and where to.
STATUS_OF_ANSWER: dict[str, str] = {AnswerKind.LOCATED: Status.LOCATED, AnswerKind.RETURNED: Status.REPATRIATED}


class ListNotFound(Exception):
    """The list or item does not exist for this reader (another organisation's, or a closed list for a partner)."""


@dataclass(frozen=True)
class Answerer:
    """Who records an answer: a user of the sending organisation, or the intermediary's token."""

    user: User | None = None
    token: ApiToken | None = None
    # The command line, acting for the sending organisation (an operator at the server).
    command: bool = False


def _screened(note: str, *, field: str = "note") -> str:
    note = (note or "").strip()
    if note:
        screen_text(note, field=field)
    return note


def _announce(case_list: CaseList, kind: str, answer: ListAnswer | None = None) -> None:
    """The event for the intermediary's webhooks, in this transaction (the outbox); a worker is nudged after commit."""
    case_services.insert_after_history(ListEvent(case_list=case_list, kind=kind, answer=answer))
    transaction.on_commit(_nudge)


def _nudge() -> None:
    from partners.announcements import nudge

    nudge("list event")


def _require_composer(user: User | None, organisation_id: int) -> None:
    if user is not None and not can_compose_lists(user, organisation_id):
        raise PermissionDenied(_("Only a supervisor of the sending organisation may compose, send or close its lists."))


def _check_cases(organisation: Organisation, cases: list[Case]) -> None:
    if any(case.organisation_id != organisation.pk for case in cases):
        raise ValidationError({"cases": [_("Only the sending organisation's own cases can be put on its lists.")]})


def create_list(
    *,
    organisation: Organisation,
    intermediary: Organisation,
    created_by: User | None,
    note: str = "",
    cases: Iterable[Case] = (),
) -> CaseList:
    """A draft list for an intermediary, with its first cases."""
    _require_composer(created_by, organisation.pk)
    errors: dict[str, list[str]] = {}
    if intermediary.kind != Organisation.Kind.INTERMEDIARY:
        errors["intermediary"] = [
            _("“%(name)s” is not an intermediary organisation.") % {"name": intermediary.display_name}
        ]
    try:
        note = _screened(note)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    case_list = list(cases)
    if len(case_list) > MAX_LIST_ITEMS:
        errors["cases"] = [_("A list holds at most %(limit)s cases.") % {"limit": MAX_LIST_ITEMS}]
    if errors:
        raise ValidationError(errors)
    _check_cases(organisation, case_list)
    with transaction.atomic():
        made = CaseList.objects.create(
            organisation=organisation, intermediary=intermediary, note=note, created_by=created_by
        )
        _add(made, case_list)
    return made


def _add(case_list: CaseList, cases: list[Case]) -> int:
    before = ListItem.objects.filter(case_list=case_list).count()
    ListItem.objects.bulk_create(
        [ListItem(case_list=case_list, case=case) for case in cases], ignore_conflicts=True, batch_size=2000
    )
    return ListItem.objects.filter(case_list=case_list).count() - before


def _locked(case_list: CaseList) -> CaseList:
    return (
        CaseList.objects.select_for_update(of=("self",), no_key=True)
        .select_related("intermediary", "organisation")
        .get(pk=case_list.pk)
    )


def add_cases(*, case_list: CaseList, cases: Iterable[Case], by: User | None) -> int:
    """Add cases to a draft; returns how many were not on it yet."""
    _require_composer(by, case_list.organisation_id)
    chosen = list(cases)
    _check_cases(case_list.organisation, chosen)
    with transaction.atomic():
        locked = _locked(case_list)
        if locked.state != ListState.DRAFT:
            raise ValidationError({"cases": [_("The list has been sent: its cases are fixed.")]})
        if ListItem.objects.filter(case_list=locked).count() + len(chosen) > MAX_LIST_ITEMS:
            raise ValidationError({"cases": [_("A list holds at most %(limit)s cases.") % {"limit": MAX_LIST_ITEMS}]})
        return _add(locked, chosen)


def remove_cases(*, case_list: CaseList, case_ids: Iterable[int], by: User | None) -> int:
    _require_composer(by, case_list.organisation_id)
    with transaction.atomic():
        locked = _locked(case_list)
        if locked.state != ListState.DRAFT:
            raise ValidationError({"cases": [_("The list has been sent: its cases are fixed.")]})
        removed, _detail = ListItem.objects.filter(case_list=locked, case_id__in=list(case_ids)).delete()
        return removed


def send_list(
    *, case_list: CaseList, sent_on: dt.date | None, by: User | None, note: str | None = None, request: Any = None
) -> CaseList:
    """Send a draft: fix its items and share its cases with the intermediary (scope ``answer``)."""
    _require_composer(by, case_list.organisation_id)
    errors: dict[str, list[str]] = {}
    if sent_on is None:
        errors["sent_on"] = [_("Give the date the list was sent.")]
    elif sent_on > timezone.localdate():
        errors["sent_on"] = [_("The date is in the future.")]
    if note is not None:
        try:
            note = _screened(note)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = _locked(case_list)
        if locked.state != ListState.DRAFT:
            raise ValidationError({"state": [_("This list has already been sent.")]})
        case_ids = list(ListItem.objects.filter(case_list=locked).values_list("case_id", flat=True))
        if not case_ids:
            raise ValidationError({"cases": [_("The list is empty: add cases before sending it.")]})
        locked.state = ListState.SENT
        locked.sent_on = sent_on
        locked.sent_at = timezone.now()
        locked.sent_by = by
        if note is not None:
            locked.note = note
        locked.save()
        _share_for_answers(locked, case_ids)
        _announce(locked, ListEvent.Kind.SENT)
        if by is not None:
            audit_chain.check_deferred_constraints()  # the shares checked before the access log's head is held
            log_access(
                action=AccessLog.Action.SHARE,
                door=AccessLog.Door.WEB if request is not None else AccessLog.Door.COMMAND,
                organisation_id=locked.organisation_id,
                case_ids=case_ids,
                user=by,
                request=request,
            )
    case_list.refresh_from_db()
    return case_list


def _share_for_answers(case_list: CaseList, case_ids: list[int]) -> None:
    # A live share the supervisor gave already shows the case to the intermediary: it is kept as it is.
    already = set(
        Share.objects.active()
        .filter(partner_id=case_list.intermediary_id, case_id__in=case_ids)
        .values_list("case_id", flat=True)
    )
    # An expired share still holds the one live row per case and partner: it is revoked, as sharing does.
    Share.objects.filter(partner_id=case_list.intermediary_id, case_id__in=case_ids, revoked_at__isnull=True).exclude(
        case_id__in=already
    ).update(revoked_at=timezone.now())
    Share.objects.bulk_create(
        [
            Share(
                case_id=case_id,
                owner_id=case_list.organisation_id,
                partner_id=case_list.intermediary_id,
                scope=ShareScope.ANSWER,
                created_by=case_list.sent_by,
            )
            for case_id in case_ids
            if case_id not in already
        ],
        batch_size=2000,
    )


def close_list(*, case_list: CaseList, by: User | None, request: Any = None) -> CaseList:
    """Close a sent list: no more answers; its ``answer`` shares end unless another open list keeps them."""
    _require_composer(by, case_list.organisation_id)
    with transaction.atomic():
        locked = _locked(case_list)
        if locked.state != ListState.SENT:
            raise ValidationError({"state": [_("Only a sent list can be closed.")]})
        locked.state = ListState.CLOSED
        locked.closed_at = timezone.now()
        locked.closed_by = by
        locked.save()
        kept = ListItem.objects.filter(
            case_list__intermediary_id=locked.intermediary_id, case_list__state=ListState.SENT
        ).values("case_id")
        ending = Share.objects.filter(
            partner_id=locked.intermediary_id,
            scope=ShareScope.ANSWER,
            revoked_at__isnull=True,
            case_id__in=ListItem.objects.filter(case_list=locked).values("case_id"),
        ).exclude(case_id__in=kept)
        _announce(locked, ListEvent.Kind.CLOSED)
        ended = list(ending.values_list("case_id", flat=True))
        Share.objects.filter(pk__in=ending.values("pk")).update(revoked_at=locked.closed_at, revoked_by=by)
        if by is not None and ended:
            audit_chain.check_deferred_constraints()  # the revoked shares checked before the log's head is held
            log_access(
                action=AccessLog.Action.REVOKE,
                door=AccessLog.Door.WEB if request is not None else AccessLog.Door.COMMAND,
                organisation_id=locked.organisation_id,
                case_ids=ended,
                user=by,
                request=request,
            )
    case_list.refresh_from_db()
    return case_list


def _answer_grant(case_list_id: int, case_id: int) -> str | None:
    """What an open list gives its intermediary on a listed case, read under the case's lock."""
    on_open_list = ListItem.objects.filter(
        case_list_id=case_list_id, case_list__state=ListState.SENT, case_id=case_id
    ).exists()
    return case_services.UPDATE_GRANT if on_open_list else None


def _status_actor(answerer: Answerer, case_list: CaseList) -> case_services.Actor:
    if answerer.user is not None:
        return case_services.Actor.for_user(answerer.user)
    if answerer.token is None:
        # The command line moves the case forward only, as a caseworker would.
        return case_services.Actor(
            organisation_id=case_list.organisation_id, role=Role.CASEWORKER, label="command line"
        )
    return case_services.Actor.for_token(
        answerer.token, grant_scope=lambda case_id: _answer_grant(case_list.pk, case_id)
    )


def _moves_case(current: str, target: str) -> bool:
    """Whether the answer's status is still ahead of the case (never backwards, never out of a side status)."""
    if current not in MAIN_PATH:
        return False
    return MAIN_PATH.index(target) > MAIN_PATH.index(current)


def status_note(case_list: CaseList, answer: str) -> str:
    """The note of the status change an answer makes."""
    return _("Answer on list %(list)s from %(intermediary)s: %(answer)s") % {
        "list": case_list.pk,
        "intermediary": case_list.intermediary.name,
        "answer": AnswerKind(answer).label,
    }


def moves_case(current: str, target: str) -> bool:
    """Whether an answer's status is still ahead of the case (never backwards, never out of a side status)."""
    return _moves_case(current, target)


def status_actor(answerer: Answerer, case_list: CaseList) -> case_services.Actor:
    """Who moves the case when the answer does."""
    return _status_actor(answerer, case_list)


def _move_case(**kwargs: Any) -> StatusChange:
    try:
        return case_services.change_status(**kwargs)
    except ValidationError as refused:
        # The status service speaks of the move's date; here it is the answer's.
        raise ValidationError(
            {
                ("answered_on" if name == "occurred_on" else name): messages
                for name, messages in refused.message_dict.items()
            }
        ) from None


def record_answer(
    *,
    case_list: CaseList,
    case: Case,
    answer: str,
    answered_on: dt.date | None,
    note: str = "",
    answerer: Answerer,
    request: Any = None,
    door: str = AccessLog.Door.WEB,
) -> ListAnswer:
    """Append an answer to an item's trail, and move the case if the answer says located or returned.

    Raises ``ListNotFound`` when the list (or the case on it) does not exist for the answerer,
    ``PermissionDenied`` when the answerer may not record answers, ``ValidationError`` when the answer
    breaks a rule, and the status service's refusals (``StaleVersion`` cannot happen: the case is locked).
    Nothing is written unless everything is. Inside ``deferred_history`` (an answered sheet) the answer may come
    back unsaved: it is written, after the move it records, at the block's end.
    """
    if answerer.user is not None:
        if not can_record_answers(answerer.user, case_list.organisation_id):
            if answerer.user.organisation_id != case_list.organisation_id and not answerer.user.is_superuser:
                raise ListNotFound
            raise PermissionDenied(_("Your role cannot record answers."))
    elif answerer.token is not None:
        if answerer.token.organisation_id != case_list.intermediary_id:
            raise ListNotFound
        if not token_can_record_answers(answerer.token):
            raise PermissionDenied(_("This token can only read."))
    elif not answerer.command:
        raise PermissionDenied(_("Say who records the answer."))
    errors: dict[str, list[str]] = {}
    if answer not in AnswerKind.values:
        errors["answer"] = [_("“%(answer)s” is not an answer.") % {"answer": answer}]
    try:
        note = _screened(note)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if answered_on is None:
        errors["answered_on"] = [_("Give the date of the answer.")]
    elif answered_on > timezone.localdate():
        errors["answered_on"] = [_("The date is in the future.")]
    if errors:
        raise ValidationError(errors)
    assert answered_on is not None
    with transaction.atomic():
        locked_list = (
            CaseList.objects.select_for_update(of=("self",), no_key=True)
            .select_related("intermediary")
            .filter(pk=case_list.pk)
            .first()
        )
        if locked_list is None:
            raise ListNotFound
        if locked_list.state != ListState.SENT:
            if answerer.token is not None:
                raise ListNotFound  # a closed list no longer exists for the intermediary
            raise ValidationError(
                {"answer": [_("Answers are recorded on sent lists only, not on a draft or a closed list.")]}
            )
        item = ListItem.objects.select_related("case").filter(case_list=locked_list, case_id=case.pk).first()
        if item is None:
            raise ListNotFound
        if locked_list.sent_on is not None and answered_on < locked_list.sent_on:
            raise ValidationError(
                {
                    "answered_on": [
                        _("The date is before the list was sent (%(date)s).")
                        % {"date": formats.date_format(locked_list.sent_on)}
                    ]
                }
            )
        locked_case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
        if answerer.token is not None and not (
            Share.objects.active().filter(case_id=case.pk, partner_id=locked_list.intermediary_id).exists()
        ):
            raise ListNotFound  # the sending organisation revoked this case's share: gone for the intermediary
        change: StatusChange | None = None
        target = STATUS_OF_ANSWER.get(answer)
        if target is not None and _moves_case(locked_case.status, target):
            change = _move_case(
                case=locked_case,
                actor=_status_actor(answerer, locked_list),
                to_status=target,
                occurred_on=answered_on,
                expected_version=locked_case.version,
                via=locked_list.intermediary if target == Status.REPATRIATED else None,
                note=status_note(locked_list, answer),
            )
        now = timezone.now()
        made = ListAnswer(
            item=item,
            answer=answer,
            answered_on=answered_on,
            note=note,
            recorded_at=now,
            recorded_by=answerer.user,
            recorded_by_token=answerer.token,
            status_change=change,
        )

        # Inside a sheet's deferred_history the move is written at the block's end, and the answer, which names
        # it, and its event after it; answers recorded while a move waits wait too, so the trail keeps its order.
        case_services.insert_after_history(made)
        _announce(locked_list, ListEvent.Kind.ANSWER, made)
        # The item's latest answer: the latest by date, the later recorded of one day.
        if item.latest_answered_on is None or answered_on >= item.latest_answered_on:
            ListItem.objects.filter(pk=item.pk).update(latest_answer=answer, latest_answered_on=answered_on)
        if answerer.token is not None:
            CaseList.objects.filter(pk=locked_list.pk).update(last_partner_answer_at=now)
        log_access(
            action=AccessLog.Action.EDIT if change is None else AccessLog.Action.STATUS_CHANGE,
            door=door,
            organisation_id=answerer.token.organisation_id if answerer.token else locked_list.organisation_id,
            case_ids=[case.pk],
            user=answerer.user,
            token=answerer.token,
            request=request,
        )
    return made


def mark_answers_seen(*, case_list: CaseList, user: User) -> None:
    """The sending organisation opened the list: its intermediary's answers are no longer new."""
    if case_list.has_unread_answers and user.organisation_id == case_list.organisation_id:
        CaseList.objects.filter(pk=case_list.pk).update(answers_seen_at=timezone.now())
