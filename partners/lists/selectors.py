"""Reads of lists to intermediaries, always scoped to the reader.

The sending organisation sees its own lists; an intermediary's token sees the
lists sent to it while they are open (a draft or a closed list does not exist
for it: a 404, never counted).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import Organisation, User
from accounts.permissions import can_read_lists
from partners.models import AnswerKind, CaseList, ListAnswer, ListItem, ListState, Share

# Answers after which nothing more is awaited on an item.
FINAL_ANSWERS = frozenset({AnswerKind.RETURNED, AnswerKind.NOT_FOUND, AnswerKind.REFUSED})
# "No answer yet" is recorded as an answer, but says nothing: an item with only that still waits.
SILENT = ("", AnswerKind.NO_ANSWER)
WAITING_DAYS = (30, 60, 90)


def with_answer_counts(lists: QuerySet[CaseList]) -> QuerySet[CaseList]:
    """Each list with its number of items and, per answer kind, the items whose latest answer it is."""
    counts = {f"count_{kind}": Count("items", filter=Q(items__latest_answer=kind)) for kind in AnswerKind.values}
    return lists.annotate(
        item_count=Count("items"),
        count_unanswered=Count("items", filter=Q(items__latest_answer="")),
        **counts,
    )


def organisation_lists(user: User) -> QuerySet[CaseList]:
    """The lists the user's organisation sent or drafted, newest first."""
    if not can_read_lists(user):
        return CaseList.objects.none()
    return CaseList.objects.filter(organisation_id=user.organisation_id).select_related("intermediary")


def get_organisation_list(user: User, list_id: int) -> CaseList | None:
    return organisation_lists(user).select_related("organisation", "sent_by", "closed_by").filter(pk=list_id).first()


def intermediary_lists(organisation_id: int) -> QuerySet[CaseList]:
    """The open lists sent to an intermediary: what its token sees."""
    return CaseList.objects.filter(intermediary_id=organisation_id, state=ListState.SENT).select_related(
        "organisation", "intermediary"
    )


def list_items(case_list: CaseList, *, answer: str | None = None) -> QuerySet[ListItem]:
    """A list's items with their case, in reference order; ``answer`` filters by latest answer ("" for none)."""
    items = ListItem.objects.filter(case_list=case_list).select_related("case").order_by("case__reference")
    if answer is not None:
        items = items.filter(latest_answer=answer)
    return items


def intermediary_items(case_list: CaseList, *, answer: str | None = None) -> QuerySet[ListItem]:
    """The items of an open list its intermediary sees: those whose case is still shared with it.

    Sending shares every listed case; the sending organisation may revoke one case's share while the
    list stays open (the child is no longer to be discussed there): that item is then gone for the
    intermediary (not listed, not counted, no answer taken), as the case is everywhere else.
    """
    live = Share.objects.active().filter(partner_id=case_list.intermediary_id).values("case_id")
    return list_items(case_list, answer=answer).filter(case_id__in=live)


def intermediary_sees_item(case_list: CaseList, case_id: int) -> bool:
    return intermediary_items(case_list).filter(case_id=case_id).exists()


def waiting_items(*, organisation_id: int, days: int, today: dt.date) -> QuerySet[ListItem]:
    """Items of the organisation's open lists with no answer (or only "no answer yet") since sent ``days`` ago."""
    return (
        ListItem.objects.filter(
            case_list__organisation_id=organisation_id,
            case_list__state=ListState.SENT,
            case_list__sent_on__lte=today - dt.timedelta(days=days),
            latest_answer__in=SILENT,
        )
        .select_related("case", "case_list__intermediary")
        .order_by("case_list__sent_on", "case__reference")
    )


def item_answers(item: ListItem) -> QuerySet[ListAnswer]:
    return ListAnswer.objects.filter(item=item).select_related("recorded_by", "recorded_by_token", "status_change")


def case_list_items(case_id: int, organisation_id: int) -> QuerySet[ListItem]:
    """The lists a case is on (the sending organisation's), with each item's answers: the case page's section."""
    return (
        ListItem.objects.filter(case_id=case_id, case_list__organisation_id=organisation_id)
        .select_related("case_list__intermediary")
        .prefetch_related(
            Prefetch(
                "answers",
                queryset=ListAnswer.objects.select_related("recorded_by", "recorded_by_token").order_by(
                    "answered_on", "id"
                ),
            )
        )
        .order_by("-case_list__sent_on", "-case_list_id")
    )


def list_intermediaries() -> QuerySet[Organisation]:
    return Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).order_by("name", "slug")
