"""Candidate pairs: records that share a blocking key, compared, kept above a score.

Pure Python over encodings already in memory; ``linkage.services`` feeds it from the database, a
chunk at a time, and the benchmark from its synthetic register. The cost is the number of pairs
that share a key, which blocking keeps near linear in the number of records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from linkage.encoding import Encoding
from linkage.similarity import Filters, score

# A key shared by more records than this says little (a very common name and year): it is ignored
# for blocking, so one crowded block cannot make the cost quadratic. Other keys still reach the pair.
MAX_BLOCK = 2000


@dataclass(frozen=True, slots=True)
class Record:
    """A case as matching sees it: its encodings and blocking keys, and two facts of its record that
    two reports of one child share: its sex (F, M or U, unknown) and its oblast of origin ("" unknown)."""

    id: int
    organisation_id: int
    filters: Filters
    blocks: tuple[int, ...]
    sex: str = "U"
    oblast: str = ""

    @classmethod
    def of(cls, *, id: int, organisation_id: int, encoding: Encoding, sex: str = "U", oblast: str = "") -> Record:
        return cls(
            id=id,
            organisation_id=organisation_id,
            filters=Filters.of(encoding),
            blocks=encoding.blocks,
            sex=sex,
            oblast=oblast,
        )


@dataclass(frozen=True, slots=True)
class Pair:
    """Two records (``a`` the lower id) and their score."""

    a: int
    b: int
    score: float


class BlockIndex:
    """Records by blocking key."""

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self.records: dict[int, Record] = {}
        self._buckets: dict[int, list[int]] = defaultdict(list)
        for record in records:
            self.add(record)

    def add(self, record: Record) -> None:
        self.records[record.id] = record
        for key in record.blocks:
            self._buckets[key].append(record.id)

    def neighbours(self, blocks: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for key in blocks:
            bucket = self._buckets.get(key)
            if bucket is not None and len(bucket) <= MAX_BLOCK:
                found.update(bucket)
        return found


# Two records of a different sex (both known) are rarely one child (a slip in the sex field): log-odds
# against; twins of different sexes share everything else. Two records of one child nearly always name
# the same oblast of origin; two children who only share a common name and a date of birth usually come
# from different oblasts. Fitted with the details' evidence (linkage.similarity).
SEX_DIFFERS = -5.5
OBLAST_DIFFERS = -3.6
_KNOWN_SEXES = frozenset({"F", "M"})


def facts_evidence(a: Record, b: Record) -> float:
    """The log-odds the two case records' own facts (sex, oblast) add."""
    value = 0.0
    if a.sex != b.sex and a.sex in _KNOWN_SEXES and b.sex in _KNOWN_SEXES:
        value += SEX_DIFFERS
    if a.oblast and b.oblast and a.oblast != b.oblast:
        value += OBLAST_DIFFERS
    return value


def pair_score(a: Record, b: Record) -> float | None:
    return score(a.filters, b.filters, more=facts_evidence(a, b))


def compare(record: Record, others: Iterable[Record], *, threshold: float) -> Iterator[Pair]:
    for other in others:
        if other.id == record.id:
            continue
        value = pair_score(record, other)
        if value is not None and value >= threshold:
            a, b = sorted((record.id, other.id))
            yield Pair(a, b, value)


def pairs_within(records: Sequence[Record], *, threshold: float) -> list[Pair]:
    """Every pair of ``records`` that shares a key and scores at least ``threshold``, best first."""
    index = BlockIndex(records)
    found: dict[tuple[int, int], Pair] = {}
    for record in records:
        neighbours = [index.records[i] for i in index.neighbours(record.blocks) if i > record.id]
        for pair in compare(record, neighbours, threshold=threshold):
            found[pair.a, pair.b] = pair
    return sorted(found.values(), key=lambda pair: (-pair.score, pair.a, pair.b))
