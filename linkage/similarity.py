"""How alike two records' encodings are: the Dice coefficient of each detail, and one score.

Dice of two bit fields = 2 |A and B| / (|A| + |B|): 1 for the same spelling, near 0 for names
with no letter pair in common. The score adds the evidence of each detail both records have, as
log-odds (Fellegi and Sunter's weights, read off a line through a few points of the detail's Dice),
and gives the probability they make: a missing patronymic is left out rather than counted against
the pair, a family name changed by adoption costs less than a different given name, and a date read
with day and month exchanged counts a little less than the date as written.

The evidence and ``LINKAGE_REVIEW_SCORE`` (settings) were chosen on the synthetic register of
``bench/bench_linkage.py``, where the truth is known: at the default score both recall and precision
of true pairs are above 0.97 there; ``make bench`` prints the curve over scores.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from linkage.encoding import FIELDS, Encoding

# The evidence each detail gives, by how alike it is: log-odds for (positive) or against (negative) one
# child, read off a line through these points of the Dice coefficient. A detail missing in either
# record gives none. Fitted (logistic regression, each detail's line kept rising with its Dice) on the
# synthetic register of bench/bench_linkage.py, then rounded: given names are common, so the same
# given name says less than a different one says against; a different family name costs less than a
# different given name (adoptions change it), and is outweighed when the patronymic, the date and the
# place agree; two dates of birth a year apart still count for, unlike two unrelated dates.
KNOTS: tuple[float, ...] = (0.0, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0)
EVIDENCE: dict[str, tuple[float, ...]] = {
    "given_name": (-7.4, -7.4, -4.0, 1.6, 3.5, 3.6, 4.4),
    "family_name": (-2.4, -2.4, -2.4, -2.4, -0.2, 1.2, 2.9),
    "patronymic": (-5.0, -5.0, -1.2, 1.2, 1.25, 1.9, 1.9),
    "birth_date": (-9.0, -3.1, -1.8, 0.6, 3.5, 3.5, 4.8),
    "birth_place": (-4.0, -4.0, -3.6, -1.9, -1.8, 1.3, 1.4),
}
# Before any detail: a pair that shares a blocking key is rarely one child.
PRIOR = -4.4
# A date that only matches with day and month exchanged; a date compared to the month only.
SWAPPED_DATE = 0.9
MONTH_ONLY = 0.9
# Fewer details in common than this say too little to propose a pair.
MIN_FIELDS = 2


@dataclass(frozen=True, slots=True)
class Filters:
    """An encoding as integers, with their bit counts: what comparisons read, computed once per record."""

    bits: tuple[int | None, ...]  # in the order of FIELDS
    counts: tuple[int, ...]
    swapped: int | None
    swapped_count: int
    month: int | None
    month_count: int
    has_day: bool

    @classmethod
    def of(cls, encoding: Encoding) -> Filters:
        return cls.from_bytes(
            *(getattr(encoding, name) for name in FIELDS),
            swapped=encoding.birth_date_swapped,
            month=encoding.birth_month,
        )

    @classmethod
    def from_bytes(cls, *fields: bytes | None, swapped: bytes | None, month: bytes | None) -> Filters:
        bits = tuple(None if value is None else int.from_bytes(value, "big") for value in fields)
        swapped_bits = None if swapped is None else int.from_bytes(swapped, "big")
        month_bits = None if month is None else int.from_bytes(month, "big")
        return cls(
            bits=bits,
            counts=tuple(0 if value is None else value.bit_count() for value in bits),
            swapped=swapped_bits,
            swapped_count=0 if swapped_bits is None else swapped_bits.bit_count(),
            month=month_bits,
            month_count=0 if month_bits is None else month_bits.bit_count(),
            # A date known to the day sets the day's bits beyond the month's.
            has_day=month_bits is not None and bits[_DATE] != month_bits,
        )


_DATE = FIELDS.index("birth_date")
_FAMILY = FIELDS.index("family_name")
_GIVEN = FIELDS.index("given_name")
_PATRONYMIC = FIELDS.index("patronymic")
_PLACE = FIELDS.index("birth_place")
_EVIDENCE = tuple(EVIDENCE[name] for name in FIELDS)


def _dice(a: int, count_a: int, b: int, count_b: int) -> float:
    total = count_a + count_b
    return 2 * (a & b).bit_count() / total if total else 0.0


def _date_score(a: Filters, b: Filters) -> float:
    x, y = a.bits[_DATE], b.bits[_DATE]
    assert x is not None and y is not None
    if not (a.has_day and b.has_day):
        # One of them is known to the month only: compare to the month, a little less sure.
        if a.month is None or b.month is None:  # encoded before months were kept
            return _dice(x, a.counts[_DATE], y, b.counts[_DATE])
        return MONTH_ONLY * _dice(a.month, a.month_count, b.month, b.month_count)
    value = _dice(x, a.counts[_DATE], y, b.counts[_DATE])
    if value < 1.0:
        if b.swapped is not None:
            value = max(value, SWAPPED_DATE * _dice(x, a.counts[_DATE], b.swapped, b.swapped_count))
        if a.swapped is not None:
            value = max(value, SWAPPED_DATE * _dice(a.swapped, a.swapped_count, y, b.counts[_DATE]))
    return value


def field_scores(a: Filters, b: Filters) -> tuple[float | None, ...]:
    """The Dice coefficient of each detail (None where either record lacks it), in the order of FIELDS."""
    scores: list[float | None] = []
    for index, (x, y) in enumerate(zip(a.bits, b.bits, strict=True)):
        if x is None or y is None:
            scores.append(None)
        elif index == _DATE:
            scores.append(_date_score(a, b))
        else:
            scores.append(_dice(x, a.counts[index], y, b.counts[index]))
    return tuple(scores)


def _evidence(field: int, value: float) -> float:
    """The log-odds a detail's Dice gives, on the line through EVIDENCE's points."""
    points = _EVIDENCE[field]
    if value >= 1.0:
        return points[-1]
    upper = bisect_right(KNOTS, value)
    low, high = KNOTS[upper - 1], KNOTS[upper]
    return points[upper - 1] + (points[upper] - points[upper - 1]) * (value - low) / (high - low)


def evidence(scores: tuple[float | None, ...]) -> float | None:
    """The log-odds of one child from the details' scores, prior included; None when the records have too
    few details in common."""
    total = PRIOR
    present = 0
    for index, value in enumerate(scores):
        if value is not None:
            total += _evidence(index, max(0.0, value))
            present += 1
    return total if present >= MIN_FIELDS else None


def probability(log_odds: float) -> float:
    """The score, from 0 to 1, of some log-odds."""
    return 1.0 / (1.0 + math.exp(-log_odds)) if log_odds > -700 else 0.0


def combine(scores: tuple[float | None, ...], *, more: float = 0.0) -> float | None:
    """One score from the details' scores (``more``: log-odds of facts outside the encodings); None when the
    records have too few details in common."""
    value = evidence(scores)
    return None if value is None else probability(value + more)


def score(a: Filters, b: Filters, *, more: float = 0.0) -> float | None:
    return combine(field_scores(a, b), more=more)
