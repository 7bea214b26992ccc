"""Synthetic children for the release tests, and their exact figures as reports.figures would give them.

A child here is a tuple (oblast, sex, age band, month of report, return or None), the return being
(intermediary, month of return, days to return). Nothing is real: keys are drawn from the register's lists.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from reports import protection

OBLASTS = ("UA-05", "UA-14", "UA-23", "UA-32", "UA-43", "UA-48", "UA-59", "UA-63", "UA-65", "UA-30")
SEXES = ("F", "M", "U")
BANDS = ("0-4", "5-9", "10-13", "14-17", "18+", "unknown")
VIAS = ("qatar", "south-africa", "vatican", "unattributed")
SERIES_START = "2022-02"


class Child(NamedTuple):
    oblast: str
    sex: str
    band: str
    report_month: str
    returned: tuple[str, str, int] | None  # (via, month of return, days to return)


def layout(as_of: dt.date, *, oblasts: Sequence[str] = OBLASTS) -> protection.Layout:
    return protection.Layout.for_date(
        as_of=as_of,
        series_start=SERIES_START,
        oblasts=oblasts,
        sexes=SEXES,
        age_bands=BANDS,
        intermediaries=VIAS,
    )


def exact(children: Sequence[Child], as_of: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    """The exact figures (the JSON form of section 4, without the cumulative series) and the release series."""

    def breakdown(index: int, keys: Sequence[str]) -> dict[str, dict[str, int]]:
        cells = {key: {"reported": 0, "repatriated": 0} for key in keys}
        for child in children:
            cells[child[index]]["reported"] += 1
            cells[child[index]]["repatriated"] += child.returned is not None
        return cells

    returned = [child.returned for child in children if child.returned is not None]
    reported_by_month: dict[str, int] = defaultdict(int)
    for child in children:
        reported_by_month[child.report_month] += 1
    figures = {
        "as_of": as_of.isoformat(),
        "published": False,
        "min_cell": None,
        "totals": {
            "reported": len(children),
            "repatriated": len(returned),
            "outstanding": len(children) - len(returned),
        },
        "by_oblast": {k: v for k, v in breakdown(0, OBLASTS).items() if v["reported"]},
        "by_sex": breakdown(1, SEXES),
        "by_age_band": breakdown(2, BANDS),
        "by_via": {key: Counter(via for via, _month, _days in returned).get(key, 0) for key in VIAS},
        "monthly": [],
        "median_days_to_return": None,
    }
    series = {
        "reported_by_month": dict(reported_by_month),
        "repatriated_by_month": dict(Counter(month for _via, month, _days in returned)),
        "days_to_return": {str(days): n for days, n in Counter(days for _via, _month, days in returned).items()},
    }
    return figures, series


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def population(
    size: int, *, seed: int, as_of: dt.date = dt.date(2025, 2, 2), returned_share: float = 0.06
) -> list[Child]:
    """A register of ``size`` children with uneven oblasts, returns spread over the months."""
    rng = random.Random(seed)
    first = dt.date(2022, 2, 24)
    span = (as_of - first).days
    weights = [30, 12, 8, 6, 20, 5, 9, 2, 7, 1]
    children = []
    for _ in range(size):
        reported_on = first + dt.timedelta(days=rng.randrange(span + 1))
        back = None
        if rng.random() < returned_share and reported_on < as_of:
            days = min(int(rng.expovariate(1 / 200)), (as_of - reported_on).days)
            back = (rng.choice(VIAS), _month(reported_on + dt.timedelta(days=days)), days)
        children.append(
            Child(
                oblast=rng.choices(OBLASTS, weights)[0],
                sex=rng.choices(SEXES, [48, 50, 2])[0],
                band=rng.choices(BANDS, [15, 25, 25, 30, 3, 2])[0],
                report_month=_month(reported_on),
                returned=back,
            )
        )
    return children
