"""How alike two records' encodings are: the Dice coefficient of each detail, and one score.

Dice of two bit fields = 2 |A and B| / (|A| + |B|): 1 for the same spelling, near 0 for names
with no letter pair in common. The score is the weighted mean of the details' Dice over the details
both records have: a missing patronymic is left out rather than counted against the pair. The given
name and the date of birth weigh most (they rarely change); the family name less (adoption into a
Russian family changes it); a date read with day and month exchanged counts a little less than the
date as written.

The weights and ``LINKAGE_REVIEW_SCORE`` (settings) were chosen on the synthetic register of
``bench/bench_linkage.py``, where the truth is known: at the default score both recall and precision
of true pairs are above 0.97 there; ``make bench`` prints the curve over scores.
"""

from __future__ import annotations

from dataclasses import dataclass

from linkage.encoding import FIELDS, Encoding

WEIGHTS: dict[str, float] = {
    "given_name": 3.0,
    "family_name": 1.5,
    "patronymic": 1.5,
    "birth_date": 3.0,
    "birth_place": 1.0,
}
# A date that only matches with day and month exchanged; a date compared to the month only.
SWAPPED_DATE = 0.9
MONTH_ONLY = 0.9
# A family name changes (an adoption, a marriage of the mother): when the patronymic or the place of
# birth agrees (at least CORROBORATES), two different family names count as this much agreement, not
# as none.
FAMILY_FLOOR = 0.5
CORROBORATES = 0.8
# Given names that agree less than the knee are different names, not one name mistyped: each point
# below it counts GIVEN_STEEPNESS points more against the pair.
GIVEN_KNEE = 0.7
GIVEN_STEEPNESS = 1.0
# Details in common weighing less than this say too little for a full score: the score is scaled
# down by the square root of the share present (two names alone, with no date, no patronymic and no
# place, are weak evidence for a common name).
FULL_EVIDENCE = 6.0
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
_WEIGHTS = tuple(WEIGHTS[name] for name in FIELDS)


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


def combine(scores: tuple[float | None, ...]) -> float | None:
    """One score from the details' scores; None when the records have too few details in common."""
    family_may_have_changed = any(
        scores[index] is not None and scores[index] >= CORROBORATES  # type: ignore[operator]
        for index in (_PATRONYMIC, _PLACE)
    )
    total = weight = 0.0
    present = 0
    for index, (value, field_weight) in enumerate(zip(scores, _WEIGHTS, strict=True)):
        if value is None:
            continue
        if index == _FAMILY and family_may_have_changed:
            value = max(value, FAMILY_FLOOR)
        elif index == _GIVEN and value < GIVEN_KNEE:
            # Below the knee the given names are different names (brothers, sisters, twins), not a slip.
            value = max(0.0, value - GIVEN_STEEPNESS * (GIVEN_KNEE - value))
        total += field_weight * value
        weight += field_weight
        present += 1
    if present < MIN_FIELDS:
        return None
    mean = total / weight
    if weight < FULL_EVIDENCE:
        mean *= (weight / FULL_EVIDENCE) ** 0.5
    return mean


def score(a: Filters, b: Filters) -> float | None:
    return combine(field_scores(a, b))
