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

One query whatever the number of lists: a row per intermediary and case, tallied here. These are internal
figures (cases on lists), in a snapshot's exact figures.

What a release publishes of them is ``list_release_series``: the same figures counting children (cases confirmed
as one child count once, as in every released figure), each child in at most
``protection.LIST_INTERMEDIARIES_PER_CHILD`` intermediaries (the first ones whose lists named it, by date sent),
so that one child changes a bounded number of cells; ``reports.protection`` adds the noise.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from typing import Any

from django.db.models import Count, Min, Q

from partners.models import AnswerKind, ListItem
from reports.children import child_of_cases
from reports.protection import LIST_INTERMEDIARIES_PER_CHILD

WAITING_DAYS = 90
_FOUND = (AnswerKind.LOCATED, AnswerKind.RETURN_PREPARING, AnswerKind.RETURNED)


def _rows(*, as_of: dt.date, organisation_id: int | None) -> Any:
    items = ListItem.objects.filter(case_list__sent_on__lte=as_of)
    if organisation_id is not None:
        items = items.filter(case_list__organisation_id=organisation_id)
    by_day = Q(answers__answered_on__lte=as_of)
    return (
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


def list_figures(*, as_of: dt.date, organisation_id: int | None = None) -> dict[str, dict[str, Any]]:
    rows = _rows(as_of=as_of, organisation_id=organisation_id)
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


def _earliest(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    return b if a is None else a if b is None else min(a, b)


def list_release_series(*, as_of: dt.date) -> dict[str, dict[str, Any]]:
    """The exact cells a release protects, per intermediary slug, counting children (two queries).

    A child (its cases confirmed as one, or a case of its own) is on an intermediary's lists if any of its cases
    is; answered, located, returned and waiting are read over all those items, and its days to return run from
    the first list to that intermediary naming it to the first "returned" answer. A child counts in at most
    ``LIST_INTERMEDIARIES_PER_CHILD`` intermediaries: the first whose lists named it (by date sent, then slug).
    ``days_to_return`` maps days to the number of returned children.
    """
    child_of = child_of_cases()
    # (child, slug) -> [first sent, first answer, first found, first returned, waiting]
    merged: dict[tuple[int, str], list[Any]] = {}
    for row in _rows(as_of=as_of, organisation_id=None):
        key = (child_of.get(row["case_id"], row["case_id"]), row["case_list__intermediary__slug"])
        found = merged.get(key)
        if found is None:
            merged[key] = [
                row["first_sent"],
                row["first_answer"],
                row["first_found"],
                row["first_returned"],
                row["waiting_lists"] > 0,
            ]
            continue
        for index, name in enumerate(("first_sent", "first_answer", "first_found", "first_returned")):
            found[index] = _earliest(found[index], row[name])
        found[4] = found[4] or row["waiting_lists"] > 0
    per_child: dict[int, list[tuple[dt.date, str]]] = defaultdict(list)
    for (child, slug), values in merged.items():
        per_child[child].append((values[0], slug))
    cells: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "children_on_lists": 0,
            "answered": 0,
            "located": 0,
            "returned": 0,
            "unanswered_90_days": 0,
            "days_to_return": defaultdict(int),
        }
    )
    for child, intermediaries in per_child.items():
        for _sent, slug in sorted(intermediaries)[:LIST_INTERMEDIARIES_PER_CHILD]:
            first_sent, first_answer, first_found, first_returned, waiting = merged[(child, slug)]
            cell = cells[slug]
            cell["children_on_lists"] += 1
            cell["answered"] += first_answer is not None
            cell["located"] += first_found is not None
            cell["unanswered_90_days"] += first_answer is None and waiting
            if first_returned is not None:
                cell["returned"] += 1
                cell["days_to_return"][(first_returned - first_sent).days] += 1
    return {
        slug: {**cell, "days_to_return": {str(days): n for days, n in sorted(cell["days_to_return"].items())}}
        for slug, cell in sorted(cells.items())
    }
