"""Figures per intermediary (DESIGN.md section 12), for the figures JSON under ``"lists"``, keyed by slug.

As of a date D, over the lists sent on or before D (by one organisation, or by all), for each intermediary:

* ``children_on_lists``: the children on at least one of its lists;
* ``answered``: those with an answer on or before D (other than "no answer yet");
* ``located``: those it answered located, return being prepared or returned on or before D (it found them);
* ``returned``: those it answered returned on or before D;
* ``median_days_to_return``: over the returned, the days from the first list that named the child to the first
  "returned" answer (null when none);
* ``unanswered_90_days``: children on a list sent at least 90 days before D, still open on D, with no answer on
  or before D.

One query whatever the number of lists: a row per intermediary and child, tallied here. Internal figures, in a
snapshot's exact figures only: releases (reports.protection) do not publish them until they protect them like
every other cell.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from typing import Any

from django.db.models import Count, Min, Q

from partners.models import AnswerKind, ListItem

WAITING_DAYS = 90
_FOUND = (AnswerKind.LOCATED, AnswerKind.RETURN_PREPARING, AnswerKind.RETURNED)


def list_figures(*, as_of: dt.date, organisation_id: int | None = None) -> dict[str, dict[str, Any]]:
    items = ListItem.objects.filter(case_list__sent_on__lte=as_of)
    if organisation_id is not None:
        items = items.filter(case_list__organisation_id=organisation_id)
    by_day = Q(answers__answered_on__lte=as_of)
    rows = (
        items.values("case_list__intermediary__slug", "case_id")
        .annotate(
            first_sent=Min("case_list__sent_on"),
            first_answer=Min("answers__answered_on", filter=by_day & ~Q(answers__answer=AnswerKind.NO_ANSWER)),
            first_found=Min("answers__answered_on", filter=by_day & Q(answers__answer__in=_FOUND)),
            first_returned=Min("answers__answered_on", filter=by_day & Q(answers__answer=AnswerKind.RETURNED)),
            waiting_lists=Count(
                "case_list",
                filter=Q(case_list__sent_on__lte=as_of - dt.timedelta(days=WAITING_DAYS))
                & (Q(case_list__closed_at__isnull=True) | Q(case_list__closed_at__date__gt=as_of)),
                distinct=True,
            ),
        )
        .order_by()
    )
    tally: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"children_on_lists": 0, "answered": 0, "located": 0, "returned": 0, "unanswered_90_days": 0}
    )
    days: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        cell = tally[row["case_list__intermediary__slug"]]
        cell["children_on_lists"] += 1
        cell["answered"] += row["first_answer"] is not None
        cell["located"] += row["first_found"] is not None
        if row["first_returned"] is not None:
            cell["returned"] += 1
            days[row["case_list__intermediary__slug"]].append((row["first_returned"] - row["first_sent"]).days)
        cell["unanswered_90_days"] += row["first_answer"] is None and row["waiting_lists"] > 0
    return {
        slug: {
            **cell,
            "median_days_to_return": float(statistics.median(days[slug])) if days[slug] else None,
        }
        for slug, cell in sorted(tally.items())
    }
