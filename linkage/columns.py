"""Many records' encodings as numpy columns, their blocking keys as a sorted index, and scores of many
pairs at once: the same score as ``linkage.similarity`` and ``linkage.matching.pair_score``, computed
for a whole batch of pairs with bit operations (AND, then ``numpy.bitwise_count``) instead of one
Python integer at a time.

What ``linkage.services`` scores after reading a chunk of cases from the database, and what an
import's job and the benchmark score against a whole register held in memory: 1,000,000 encoded
cases take about 470 MB (seven 512-bit fields, their bit counts, the keys).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from linkage.encoding import BYTES, DATE_EXTRAS, FIELDS, Encoding
from linkage.matching import MAX_BLOCK, OBLAST_DIFFERS, SEX_DIFFERS, Pair, Record
from linkage.similarity import EVIDENCE, KNOTS, MIN_FIELDS, MONTH_ONLY, PRIOR, SWAPPED_DATE

# The columns of ``bits``: the five details, then the date's two extras.
COLUMNS: tuple[str, ...] = (*FIELDS, *DATE_EXTRAS)
WORDS = BYTES // 8
_DATE = FIELDS.index("birth_date")
_SWAPPED = COLUMNS.index("birth_date_swapped")
_MONTH = COLUMNS.index("birth_month")
_SEXES = {"F": 1, "M": 2}
_OBLAST = re.compile(r"UA-(\d\d)")
# Pairs scored per numpy batch: a megabyte or two of gathered bits at a time, so that the temporaries stay
# in the processor's caches (200,000 at a time took 1.5x as long, and a plain AND of them 4x).
BATCH = 20_000
# Query records whose neighbours are looked up at once.
QUERY_CHUNK = 5_000

UInt64s = npt.NDArray[np.uint64]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def oblast_code(oblast: str) -> int:
    """A small number for an oblast (0: unknown), the same in every process."""
    if not oblast:
        return 0
    found = _OBLAST.fullmatch(oblast)
    return int(found[1]) if found else 100 + zlib.crc32(oblast.encode()) % 30_000


def _words(value: bytes | None) -> UInt64s:
    if value is None:
        return np.zeros(WORDS, dtype=np.uint64)
    return np.frombuffer(value, dtype=np.uint64)


@dataclass(frozen=True)
class Columns:
    """Records as columns. A field of no bits is a detail not given (a given detail always sets some)."""

    ids: Ints  # (n,)
    organisations: Ints  # (n,)
    bits: UInt64s  # (n, 7, WORDS), in the order of COLUMNS
    counts: npt.NDArray[np.uint16]  # (n, 7)
    sexes: npt.NDArray[np.int8]  # 0 unknown, 1 F, 2 M
    oblasts: npt.NDArray[np.int16]  # oblast_code
    key_values: Ints  # the blocking keys of every record, one after the other
    key_rows: npt.NDArray[np.int32]  # the row each key belongs to

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(
        cls,
        ids: Sequence[int],
        organisations: Sequence[int],
        encodings: Iterable[Encoding],
        sexes: Sequence[str],
        oblasts: Sequence[str],
    ) -> Columns:
        rows = list(encodings)
        bits = np.zeros((len(rows), len(COLUMNS), WORDS), dtype=np.uint64)
        key_values: list[int] = []
        key_rows: list[int] = []
        for row, encoding in enumerate(rows):
            for column, name in enumerate(COLUMNS):
                value = getattr(encoding, name)
                if value is not None:
                    bits[row, column] = _words(value)
            key_values.extend(encoding.blocks)
            key_rows.extend([row] * len(encoding.blocks))
        return cls(
            ids=np.asarray(ids, dtype=np.int64),
            organisations=np.asarray(organisations, dtype=np.int64),
            bits=bits,
            counts=np.bitwise_count(bits).sum(axis=2, dtype=np.uint16),
            sexes=np.asarray([_SEXES.get(sex, 0) for sex in sexes], dtype=np.int8),
            oblasts=np.asarray([oblast_code(oblast) for oblast in oblasts], dtype=np.int16),
            key_values=np.asarray(key_values, dtype=np.int64),
            key_rows=np.asarray(key_rows, dtype=np.int32),
        )

    @classmethod
    def of_records(cls, records: Sequence[Record]) -> Columns:
        """From records read for matching (their filters as integers)."""

        def encoding(record: Record) -> Encoding:
            def as_bytes(value: int | None) -> bytes | None:
                return None if value is None else value.to_bytes(BYTES, "big")

            filters = record.filters
            fields = dict(zip(FIELDS, (as_bytes(value) for value in filters.bits), strict=True))
            return Encoding(
                **fields,
                birth_date_swapped=as_bytes(filters.swapped),
                birth_month=as_bytes(filters.month),
                blocks=record.blocks,
            )

        return cls.of(
            [record.id for record in records],
            [record.organisation_id for record in records],
            (encoding(record) for record in records),
            [record.sex for record in records],
            [record.oblast for record in records],
        )

    @classmethod
    def concatenate(cls, parts: Sequence[Columns]) -> Columns:
        offsets = np.cumsum([0, *(len(part) for part in parts)])
        return cls(
            ids=np.concatenate([part.ids for part in parts]),
            organisations=np.concatenate([part.organisations for part in parts]),
            bits=np.concatenate([part.bits for part in parts]),
            counts=np.concatenate([part.counts for part in parts]),
            sexes=np.concatenate([part.sexes for part in parts]),
            oblasts=np.concatenate([part.oblasts for part in parts]),
            key_values=np.concatenate([part.key_values for part in parts]),
            key_rows=np.concatenate(
                [(part.key_rows + offset).astype(np.int32) for part, offset in zip(parts, offsets, strict=False)]
            ),
        )

    def keys_of(self, rows: Ints) -> tuple[Ints, Ints]:
        """The blocking keys of some rows, and the row of each (the rows given, in that order)."""
        order = np.argsort(self.key_rows, kind="stable")
        sorted_rows = self.key_rows[order]
        starts = np.searchsorted(sorted_rows, rows, side="left")
        ends = np.searchsorted(sorted_rows, rows, side="right")
        positions = _ranges(starts, ends)
        return self.key_values[order[positions]], np.repeat(rows, ends - starts)


def _ranges(starts: Ints, ends: Ints) -> Ints:
    """Every position of the ranges [start, end), one range after the other."""
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(starts - firsts, lengths) + np.arange(total, dtype=np.int64)


class KeyIndex:
    """The rows of some columns by blocking key, sorted; keys shared by more than MAX_BLOCK rows left out."""

    def __init__(self, columns: Columns, *, max_block: int = MAX_BLOCK) -> None:
        self._build(columns.key_values.copy(), columns.key_rows, max_block=max_block)

    @classmethod
    def consuming(cls, key_values: Ints, key_rows: npt.NDArray[np.int32], *, max_block: int = MAX_BLOCK) -> KeyIndex:
        """The index of these keys, sorting ``key_values`` in place (the caller's array is left sorted and
        is not kept): what a job over a whole register does, so that no second copy of the keys is made."""
        index = cls.__new__(cls)
        index._build(key_values, key_rows, max_block=max_block)
        return index

    def _build(self, values: Ints, key_rows: npt.NDArray[np.int32], *, max_block: int) -> None:
        order = np.argsort(values, kind="stable")
        self.rows = key_rows[order]
        del order
        # The sorted values are the same whatever the order of equal ones: sorted in place, no copy.
        values.sort()
        # Each key starts where the value changes (no second sort, as np.unique's).
        changes = np.flatnonzero(values[1:] != values[:-1]) + 1 if len(values) else np.zeros(0, dtype=np.int64)
        starts = np.concatenate([np.zeros(min(1, len(values)), dtype=np.int64), changes])
        del changes
        sizes = np.diff(np.append(starts, len(values)))
        usable = sizes <= max_block
        self.keys, self.starts, self.sizes = values[starts[usable]], starts[usable], sizes[usable]

    def neighbours(self, keys: Ints, owners: Ints) -> tuple[Ints, Ints]:
        """For keys owned by query rows: each (owner, row of the index) pair sharing a key, once."""
        at = np.searchsorted(self.keys, keys)
        at[at >= len(self.keys)] = 0
        found = self.keys[at] == keys if len(self.keys) else np.zeros(len(keys), dtype=bool)
        at, owners = at[found], owners[found]
        starts = self.starts[at]
        positions = _ranges(starts, starts + self.sizes[at])
        mine = np.repeat(owners, self.sizes[at])
        theirs = self.rows[positions].astype(np.int64)
        width = int(theirs.max(initial=0)) + 1
        pairs = _unique(mine * width + theirs)
        return pairs // width, pairs % width


def _unique(values: Ints) -> Ints:
    """The distinct values, sorted: a sort and a mask (numpy 2's np.unique hashes first, 30-50x slower here)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    distinct = np.empty(len(values), dtype=bool)
    distinct[0] = True
    np.not_equal(values[1:], values[:-1], out=distinct[1:])
    return values[distinct]


def _dice_of(words_a: UInt64s, words_b: UInt64s, count_a: Floats, count_b: Floats) -> Floats:
    """The Dice coefficient of gathered filters (rows of words) whose bit counts are given (0: absent)."""
    common = np.bitwise_count(words_a & words_b).sum(axis=1, dtype=np.int32)
    total = count_a + count_b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * common / total, 0.0)


def _date(a: Columns, ai: Ints, b: Columns, bi: Ints) -> Floats:
    """linkage.similarity's date score, for pairs whose dates are both given. Each of the three date
    columns of each side is gathered once (they are read by several comparisons)."""
    date_a, date_b = a.bits[ai, _DATE], b.bits[bi, _DATE]
    month_a, month_b = a.bits[ai, _MONTH], b.bits[bi, _MONTH]
    counts_a, counts_b = a.counts[ai].astype(np.float64), b.counts[bi].astype(np.float64)
    value = _dice_of(date_a, date_b, counts_a[:, _DATE], counts_b[:, _DATE])
    months_given_a, months_given_b = counts_a[:, _MONTH] > 0, counts_b[:, _MONTH] > 0
    # A date known to the day sets the day's bits beyond the month's.
    has_day_a = months_given_a & np.any(date_a != month_a, axis=1)
    has_day_b = months_given_b & np.any(date_b != month_b, axis=1)
    both_days = has_day_a & has_day_b
    months = _dice_of(month_a, month_b, counts_a[:, _MONTH], counts_b[:, _MONTH])
    del month_a, month_b
    to_month = ~both_days & months_given_a & months_given_b
    swapped_b = _dice_of(date_a, b.bits[bi, _SWAPPED], counts_a[:, _DATE], counts_b[:, _SWAPPED])
    swapped_a = _dice_of(a.bits[ai, _SWAPPED], date_b, counts_a[:, _SWAPPED], counts_b[:, _DATE])
    given_b = np.minimum(counts_a[:, _DATE], counts_b[:, _SWAPPED]) > 0
    given_a = np.minimum(counts_a[:, _SWAPPED], counts_b[:, _DATE]) > 0
    swapped = np.maximum(np.where(given_b, swapped_b, 0.0), np.where(given_a, swapped_a, 0.0))
    exchanged = both_days & (value < 1.0)
    value = np.where(exchanged, np.maximum(value, SWAPPED_DATE * swapped), value)
    return np.where(to_month, MONTH_ONLY * months, value)


_POINTS = {name: np.asarray(points, dtype=np.float64) for name, points in EVIDENCE.items()}
_KNOTS = np.asarray(KNOTS, dtype=np.float64)


# The order details are compared in: the most telling first, so that pairs that can no longer reach the
# threshold are dropped before the rest is compared.
_ORDER = tuple(FIELDS.index(name) for name in ("given_name", "birth_date", "family_name", "patronymic", "birth_place"))
_MOST = {name: max(points) for name, points in EVIDENCE.items()}
_MOST_BY_COLUMN = np.asarray([_MOST[name] for name in FIELDS], dtype=np.float64)


def _log_odds(threshold: float | None) -> float:
    if threshold is None or threshold <= 0.0:
        return -math.inf
    if threshold >= 1.0:
        return math.inf
    return math.log(threshold / (1.0 - threshold)) - 1e-9


def score_pairs(a: Columns, ai: Ints, b: Columns, bi: Ints, *, threshold: float | None = None) -> Floats:
    """The score of each pair (row ai[k] of a, row bi[k] of b), as ``linkage.matching.pair_score``; NaN
    when the two records have too few details in common. With ``threshold``, a pair that cannot reach it
    once some details are compared (even if the rest agreed fully) is not compared further and scores 0."""
    sex_a, sex_b = a.sexes[ai], b.sexes[bi]
    oblast_a, oblast_b = a.oblasts[ai], b.oblasts[bi]
    total = np.full(len(ai), PRIOR, dtype=np.float64)
    total += np.where((sex_a != sex_b) & (sex_a > 0) & (sex_b > 0), SEX_DIFFERS, 0.0)
    total += np.where((oblast_a != oblast_b) & (oblast_a > 0) & (oblast_b > 0), OBLAST_DIFFERS, 0.0)
    # Each side's bit counts gathered once, a row per pair.
    counts_a, counts_b = a.counts[ai, : len(FIELDS)], b.counts[bi, : len(FIELDS)]
    given = (counts_a > 0) & (counts_b > 0)  # (n, 5)
    present = given.sum(axis=1)
    still = given @ _MOST_BY_COLUMN  # the most the details not yet compared could add
    needed = _log_odds(threshold)
    alive = np.ones(len(ai), dtype=bool)
    for column in _ORDER:
        name = FIELDS[column]
        rows = np.flatnonzero(alive & given[:, column])
        if len(rows):
            pa, pb = ai[rows], bi[rows]
            if column == _DATE:
                value = _date(a, pa, b, pb)
            else:
                value = _dice_of(
                    a.bits[pa, column],
                    b.bits[pb, column],
                    counts_a[rows, column].astype(np.float64),
                    counts_b[rows, column].astype(np.float64),
                )
            total[rows] += np.interp(value, _KNOTS, _POINTS[name])
            still[rows] -= _MOST[name]
        if needed > -math.inf:
            alive &= total + still >= needed
    scores = 1.0 / (1.0 + np.exp(-np.maximum(total, -700.0)))
    return np.where(present >= MIN_FIELDS, np.where(alive, scores, 0.0), np.nan)


def scored(a: Columns, ai: Ints, b: Columns, bi: Ints, *, threshold: float) -> Iterator[tuple[Ints, Ints, Floats]]:
    """The pairs scoring at least ``threshold``, a batch at a time: rows of a, rows of b, scores."""
    for start in range(0, len(ai), BATCH):
        pa, pb = ai[start : start + BATCH], bi[start : start + BATCH]
        scores = score_pairs(a, pa, b, pb, threshold=threshold)
        keep = scores >= threshold
        yield pa[keep], pb[keep], scores[keep]


def neighbour_pairs(queries: Columns, index: KeyIndex, *, chunk: int = QUERY_CHUNK) -> Iterator[tuple[Ints, Ints]]:
    """The (query row, index row) pairs that share a usable key, ``chunk`` query rows at a time (so that
    memory stays flat however many queries there are)."""
    order = np.argsort(queries.key_rows, kind="stable")
    owners = queries.key_rows[order]
    for start in range(0, len(queries), chunk):
        low, high = np.searchsorted(owners, [start, start + chunk])
        taken = order[low:high]
        yield index.neighbours(queries.key_values[taken], queries.key_rows[taken].astype(np.int64))


def candidates(queries: Columns, index: KeyIndex, register: Columns, *, threshold: float) -> list[Pair]:
    """Every pair of a query record with a register record that share a usable key and score at least
    ``threshold`` (a record never pairs with itself), best first."""
    found: dict[tuple[int, int], Pair] = {}
    for mine, theirs in neighbour_pairs(queries, index):
        other = queries.ids[mine] != register.ids[theirs]
        for rows_a, rows_b, scores in scored(queries, mine[other], register, theirs[other], threshold=threshold):
            for id_a, id_b, value in zip(
                queries.ids[rows_a].tolist(), register.ids[rows_b].tolist(), scores.tolist(), strict=True
            ):
                a, b = (id_a, id_b) if id_a < id_b else (id_b, id_a)
                found[a, b] = Pair(a, b, value)
    return sorted(found.values(), key=lambda pair: (-pair.score, pair.a, pair.b))
