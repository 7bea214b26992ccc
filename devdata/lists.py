"""The demo's lists to intermediaries: what each NGO asked Qatar, the Holy See and South Africa in 2024, and what
came back over the months, consistent with the returns the demo credits to them.

Built after the demo's cases, from their histories, through the list services (as a supervisor would, from the
command line): every child the demo records as repatriated via one of these intermediaries in 2024 is on a list
sent to it before the return, with a "received" answer and a "returned" answer on the day of the return (the case
is already repatriated: no status moves, the figures stay as they are); other children still awaited are on the
same lists with answers that say what is known (received, under verification, located for those already located,
not found, refused, no answer yet) or none yet. The first round of lists is closed. Synthetic, like the rest.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Mapping

from accounts.models import Organisation
from casework.models import MAIN_PATH, Case, Status, StatusChange
from partners.lists import services
from partners.models import AnswerKind

LIST_INTERMEDIARIES = ("qatar", "vatican", "south-africa")
# Three rounds in 2024; a return goes on the latest round sent at least a week before it.
ROUNDS = (dt.date(2024, 1, 15), dt.date(2024, 5, 15), dt.date(2024, 9, 16))
WAITING_PER_LIST = 40
LIST_SEED = 14
_LOCATED_OR_FURTHER = frozenset(MAIN_PATH[MAIN_PATH.index(Status.LOCATED) :])


def _round_for(day: dt.date, reported_on: dt.date) -> dt.date | None:
    chosen = None
    for sent_on in ROUNDS:
        if reported_on <= sent_on <= day - dt.timedelta(days=7):
            chosen = sent_on
    return chosen


def seed_demo_lists(*, ngos: Mapping[str, Organisation], vias: Mapping[str, Organisation], today: dt.date) -> int:
    """Send the demo's lists and record their answers; returns how many lists. Run once, with the cases."""
    rng = random.Random(LIST_SEED)  # noqa: S311 (reproducible synthetic data, no secret)
    answerer = services.Answerer(command=True)
    by_slug = {slug: vias[slug] for slug in LIST_INTERMEDIARIES if slug in vias}
    # The 2024 returns via these intermediaries of cases still returned today: (organisation, via, round) -> cases.
    returns: dict[tuple[int, int, dt.date], list[tuple[int, dt.date]]] = defaultdict(list)
    latest: dict[int, tuple[dt.date, int]] = {}
    rows = StatusChange.objects.filter(
        to_status=Status.REPATRIATED,
        via__in=list(by_slug.values()),
        occurred_on__year=2024,
        case__organisation__in=list(ngos.values()),
        case__status__in=[Status.REPATRIATED, Status.REUNIFIED],
    ).values_list("case_id", "via_id", "occurred_on", "case__reported_on", "case__organisation_id")
    for case_id, via_id, occurred_on, reported_on, organisation_id in rows.order_by("occurred_on", "id"):
        latest[case_id] = (occurred_on, via_id)
        sent_on = _round_for(occurred_on, reported_on)
        if sent_on is not None:
            returns[(organisation_id, via_id, sent_on)].append((case_id, occurred_on))
    made = 0
    waiting_pool = list(
        Case.objects.filter(
            organisation__in=list(ngos.values()),
            status__in=[Status.REPORTED, Status.VERIFIED, Status.LOCATED, Status.RETURN_REQUESTED],
            reported_on__lt=ROUNDS[-1],
        )
        .order_by("id")
        .values_list("id", "organisation_id", "reported_on", "status")
    )
    rng.shuffle(waiting_pool)
    taken: set[int] = set()
    plan: list[tuple[Organisation, Organisation, dt.date, list[tuple[int, dt.date]], list[tuple[int, str]]]] = []
    for organisation in ngos.values():
        for via in by_slug.values():
            for sent_on in ROUNDS:
                returned = [
                    (case_id, day)
                    for case_id, day in returns.get((organisation.pk, via.pk, sent_on), [])
                    if latest[case_id] == (day, via.pk)
                ]
                if not returned:
                    continue
                waiting: list[tuple[int, str]] = []
                for case_id, organisation_id, reported_on, status in waiting_pool:
                    if len(waiting) >= WAITING_PER_LIST:
                        break
                    if organisation_id == organisation.pk and reported_on <= sent_on and case_id not in taken:
                        waiting.append((case_id, status))
                        taken.add(case_id)
                plan.append((organisation, via, sent_on, returned, waiting))
    wanted = {case_id for *_head, returned, waiting in plan for case_id, _x in (*returned, *waiting)}
    cases_by_id = Case.objects.in_bulk(list(wanted))
    for organisation, via, sent_on, returned, waiting in plan:
        case_list = services.create_list(
            organisation=organisation,
            intermediary=via,
            created_by=None,
            note="Synthetic demo list.",
            cases=[cases_by_id[case_id] for case_id, _x in (*returned, *waiting)],
        )
        services.send_list(case_list=case_list, sent_on=sent_on, by=None)
        answers: list[tuple[dt.date, int, str]] = []
        for case_id, day in returned:
            received = sent_on + dt.timedelta(days=rng.randint(3, max(3, min(30, (day - sent_on).days))))
            answers.append((min(received, day), case_id, AnswerKind.RECEIVED))
            if (day - sent_on).days > 40 and rng.random() < 0.6:
                answers.append((day - dt.timedelta(days=rng.randint(5, 20)), case_id, AnswerKind.RETURN_PREPARING))
            answers.append((day, case_id, AnswerKind.RETURNED))
        for case_id, status in waiting:
            roll = rng.random()
            if roll < 0.3:
                continue  # nothing heard yet: the waiting views show them
            first = sent_on + dt.timedelta(days=rng.randint(5, 40))
            answers.append((first, case_id, AnswerKind.RECEIVED))
            later = first + dt.timedelta(days=rng.randint(20, 120))
            if later >= today:
                continue
            if status in _LOCATED_OR_FURTHER and roll < 0.6:
                answers.append((later, case_id, AnswerKind.LOCATED))
            elif roll < 0.75:
                answers.append((later, case_id, AnswerKind.UNDER_VERIFICATION))
            elif roll < 0.85:
                answers.append((later, case_id, AnswerKind.NOT_FOUND))
            elif roll < 0.9:
                answers.append((later, case_id, AnswerKind.REFUSED))
            else:
                answers.append((later, case_id, AnswerKind.NO_ANSWER))
        for day, case_id, kind in sorted(answers, key=lambda answer: (answer[0], answer[1])):
            services.record_answer(
                case_list=case_list,
                case=cases_by_id[case_id],
                answer=kind,
                answered_on=day,
                answerer=answerer,
            )
        if sent_on == ROUNDS[0]:
            services.close_list(case_list=case_list, by=None)
        made += 1
    return made
