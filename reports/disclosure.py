"""Published figures: small-cell suppression (DESIGN.md section 4).

``publish(figures, k=...)`` turns the exact figures into the published ones:
every breakdown cell with 0 < n < k becomes ``null`` (primary suppression),
and further cells are hidden (complementary suppression) so that no hidden
value can be worked out from what is shown. Zeros are shown: a zero does not
single anybody out.

What a reader can use against the published figures
--------------------------------------------------

* Every breakdown column adds up to its total: the reported cells of
  ``by_oblast``, ``by_sex`` and ``by_age_band`` to ``totals.reported``; their
  repatriated cells and ``by_via`` to ``totals.repatriated``. So the hidden
  cells of a column add up to the total minus the shown cells.
* A hidden cell is at least 1 (zeros are never hidden, and the rule may be
  known to the reader).
* Within a key, repatriated <= reported.
* The monthly series is cumulative: the difference of two values is the net
  change over the months between them, and its last value is the total.

The rules, and why they are enough
----------------------------------

1. Totals. A total with 0 < n < k is hidden, and with it every non-zero cell
   of every column that adds up to it (otherwise the shown cells would give
   it back), the last value of its monthly series, and ``outstanding``.
   ``outstanding`` is shown only when both totals are. The median days to
   return is shown only when at least k returns stand behind it (a median of
   fewer values is close to being one child's value).

2. A column (one measure of one breakdown) whose total is shown: after the
   primary suppression, the smallest further cells are hidden until the
   hidden cells (a) number at least two, (b) add up to at least k, and
   (c) leave every one of them undetermined: for each hidden cell there is
   another table, equal on every shown number and total and obeying the
   constraints above, in which that cell has a different value. (c) is
   checked constructively, by moving one child between two hidden cells of
   the column while the other column stays as it truly is:

   * reported: a hidden cell can give one to another if it is above
     max(1, its repatriated value); so one such cell among the hidden ones
     suffices for the whole column;
   * repatriated: one cell can go up (it stays <= its reported value) while
     another goes down (it stays >= 1); every hidden cell must be part of
     such a pair. ``by_via`` has no upper bound but the total.

   If even hiding every non-zero cell of a column cannot satisfy (a)-(c)
   (say five intermediaries with one return each), the column's total is
   hidden instead, as in rule 1.

3. Monthly series. Cumulative counts give away monthly changes: 100 in
   March and 101 in April says one child was reported in April. A month's
   value is therefore shown only if it is 0 or at least k, and differs from
   the previous shown value (or from 0, before the first month) by 0 or by
   at least k; the last month is shown exactly when its total is (after
   dropping shown months from the end until its difference is large
   enough). Hidden months are ``null``; the net change between any two
   shown values is 0 or at least k.

What the rules do not cover: ``outstanding`` (a total) and the difference
between a key's reported and repatriated cells are not cells of section 4,
so they are not suppressed; both can be small when almost every child of a
key is back. Section 4 defines the cells, and this module follows it.

The property tests (``tests/test_disclosure_properties.py``) check, by
enumerating every table that agrees with the published figures, that no
hidden cell has a single possible value and that no shown cell is between 1
and k-1.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from reports.figures import Figures

REPORTED = "reported"
REPATRIATED = "repatriated"
TWO_MEASURE_BREAKDOWNS: tuple[str, ...] = ("by_oblast", "by_sex", "by_age_band")


def publish(figures: Figures, *, k: int) -> Figures:
    """The published variant of exact ``figures``: small cells hidden, ``published`` true, ``min_cell`` k."""
    if k < 2:
        raise ValueError("The minimum cell size must be at least 2.")
    exact = figures
    result = copy.deepcopy(figures)
    # Internal figures other apps add (the lists to intermediaries) are not published until protected.
    result.pop("lists", None)
    result["published"] = True
    result["min_cell"] = k
    totals = exact["totals"]
    hidden_total = {measure: 0 < totals[measure] < k for measure in (REPORTED, REPATRIATED)}

    # Rule 2 for every column whose total is shown; a column that cannot be
    # protected hides its total (rule 1), which then hides its sibling columns.
    hidden: dict[tuple[str, str], set[str]] = {}
    for name in TWO_MEASURE_BREAKDOWNS:
        cells = exact[name]
        for measure in (REPORTED, REPATRIATED):
            if hidden_total[measure]:
                continue
            values = {key: cell[measure] for key, cell in cells.items()}
            chosen = _protect(values, k=k, has_room=_room_checker(measure, cells))
            if chosen is None:
                hidden_total[measure] = True
            else:
                hidden[name, measure] = chosen
    if not hidden_total[REPATRIATED]:
        chosen = _protect(exact["by_via"], k=k, has_room=_room_checker("via", {}))
        if chosen is None:
            hidden_total[REPATRIATED] = True
        else:
            hidden["by_via", REPATRIATED] = chosen

    for name in TWO_MEASURE_BREAKDOWNS:
        for measure in (REPORTED, REPATRIATED):
            keys = _nonzero(exact[name], measure) if hidden_total[measure] else hidden.get((name, measure), set())
            for key in keys:
                result[name][key][measure] = None
    via_hidden = (
        {key for key, value in exact["by_via"].items() if value}
        if hidden_total[REPATRIATED]
        else hidden.get(("by_via", REPATRIATED), set())
    )
    for key in via_hidden:
        result["by_via"][key] = None

    for measure in (REPORTED, REPATRIATED):
        if hidden_total[measure]:
            result["totals"][measure] = None
    if hidden_total[REPORTED] or hidden_total[REPATRIATED]:
        result["totals"]["outstanding"] = None
    if hidden_total[REPATRIATED] or totals[REPATRIATED] < k:
        result["median_days_to_return"] = None

    for measure in (REPORTED, REPATRIATED):
        shown = _shown_months([month[measure] for month in exact["monthly"]], k=k, last_shown=not hidden_total[measure])
        for month, visible in zip(result["monthly"], shown, strict=True):
            if not visible:
                month[measure] = None
    return result


def _nonzero(cells: Mapping[str, Mapping[str, int]], measure: str) -> set[str]:
    return {key for key, cell in cells.items() if cell[measure]}


RoomChecker = Callable[[set[str], Mapping[str, int]], bool]


def _room_checker(measure: str, cells: Mapping[str, Mapping[str, int]]) -> RoomChecker:
    """Whether the hidden cells of a column leave every one of them undetermined (rule 2c)."""

    if measure == REPORTED:

        def reported_ok(chosen: set[str], values: Mapping[str, int]) -> bool:
            # One cell above its lower bound can pass one child to or take one from any other.
            return any(values[key] > max(1, cells[key][REPATRIATED]) for key in chosen)

        return reported_ok

    def can_rise(key: str, values: Mapping[str, int]) -> bool:
        return measure == "via" or values[key] < cells[key][REPORTED]

    def repatriated_ok(chosen: set[str], values: Mapping[str, int]) -> bool:
        for key in chosen:
            others = chosen - {key}
            rises_if_other_falls = can_rise(key, values) and any(values[other] >= 2 for other in others)
            falls_if_other_rises = values[key] >= 2 and any(can_rise(other, values) for other in others)
            if not (rises_if_other_falls or falls_if_other_rises):
                return False
        return True

    return repatriated_ok


def _protect(values: Mapping[str, int], *, k: int, has_room: RoomChecker) -> set[str] | None:
    """The cells of one column to hide (rule 2), or None when only hiding the total protects it."""
    chosen = {key for key, value in values.items() if 0 < value < k}
    order = {key: index for index, key in enumerate(values)}

    def protected() -> bool:
        return not chosen or (len(chosen) >= 2 and sum(values[key] for key in chosen) >= k and has_room(chosen, values))

    while not protected():
        # Smallest first (ties in key order): hide as little as possible.
        candidates = sorted(
            (key for key, value in values.items() if value and key not in chosen),
            key=lambda key: (values[key], order[key]),
        )
        if not candidates:
            return None
        enough = len(chosen) >= 2 and sum(values[key] for key in chosen) >= k
        if enough:
            # Only the room is missing: the smallest cell that brings it.
            helpful = [key for key in candidates if has_room(chosen | {key}, values)]
            chosen.add(helpful[0] if helpful else candidates[0])
        else:
            chosen.add(candidates[0])
    return chosen


def _shown_months(values: list[int], *, k: int, last_shown: bool) -> list[bool]:
    """Which values of a cumulative series to show (rule 3)."""
    shown = [False] * len(values)
    previous = 0
    for index, value in enumerate(values):
        if (value == 0 or value >= k) and (value == previous or abs(value - previous) >= k):
            shown[index] = True
            previous = value
    if not values:
        return shown
    last = len(values) - 1
    if not last_shown:
        shown[last] = False
        return shown
    if not shown[last]:
        # Drop shown months from the end until the step to the last value is 0 or at least k.
        for index in range(last - 1, -1, -1):
            if shown[index]:
                step = abs(values[last] - values[index])
                if step == 0 or step >= k:
                    break
                shown[index] = False
        shown[last] = True
    return shown


def describe_hidden(published: Figures) -> dict[str, Any]:
    """How many values the published figures hide, for the page's note."""
    count = sum(1 for value in published["totals"].values() if value is None)
    for name in TWO_MEASURE_BREAKDOWNS:
        count += sum(1 for cell in published[name].values() for value in cell.values() if value is None)
    count += sum(1 for value in published["by_via"].values() if value is None)
    months = sum(1 for month in published["monthly"] for key in (REPORTED, REPATRIATED) if month[key] is None)
    return {"cells": count, "months": months}
