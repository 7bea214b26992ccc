"""The demo's children reported twice: pairs for the host's review queue (``seed_demo``).

Synthetic: invented children (devdata.people), given as identifying details to demo cases that already
exist, encoded and dropped as any case's details are. NGO A and NGO B both report
``DEMO_SHARED_CHILDREN`` of them (pairs across organisations, for the host's supervisors), NGO A
reports ``DEMO_TWICE_IN_NGO_A`` twice (its supervisors' own queue), and ``DEMO_OTHER_ENCODED`` other
cases have details of children reported once. The planted pairs are cases that exist on the demo's
figures day and were never closed as duplicates or withdrawn, so that confirming them lowers the
register-wide children by exactly their number while the records stay.

Planted once: a later run, finding the demo's encodings, adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace

from django.db import transaction

from casework.identifying import IdentifyingDetails, PartialDate
from casework.models import SIDE_STATUSES, Case, StatusChange
from devdata.people import Child, People
from linkage import services
from linkage.encoding import default_encoder
from linkage.models import Candidate, CaseEncoding

DEMO_SHARED_CHILDREN = 24
DEMO_TWICE_IN_NGO_A = 3
DEMO_OTHER_ENCODED = 300
PEOPLE_SEED = 2013
# Another organisation's spelling of a child is drawn again until the pair scores for review.
_TRIES = 40


@dataclass
class PlantedLinks:
    created: bool
    across: list[tuple[str, str]]  # references (NGO A's, NGO B's)
    within: list[tuple[str, str]]  # references (NGO A's earlier, NGO A's later)
    encoded: int


@dataclass(frozen=True)
class _Eligible:
    id: int
    reference: str
    organisation: str
    sex: str
    birth_year: int | None
    oblast: str


def _eligible(as_of: dt.date) -> list[_Eligible]:
    """Demo cases that exist on the figures day and were never a duplicate nor withdrawn, in id order."""
    closed_once = StatusChange.objects.filter(to_status__in=SIDE_STATUSES).values("case_id")
    cases = (
        Case.objects.filter(organisation__slug__in=("ngo-a", "ngo-b"), reported_on__lte=as_of)
        .exclude(status__in=SIDE_STATUSES)
        .exclude(pk__in=closed_once)
        .order_by("id")
        .values_list("id", "reference", "organisation__slug", "sex", "birth_year", "oblast")
    )
    return [_Eligible(*row) for row in cases]


def _children(people: People, sex: str) -> Iterator[Child]:
    while True:
        for child in people.children(50):
            if sex not in "FM" or child.sex == sex:
                yield child


def _fitted(child: Child, case: _Eligible) -> Child:
    """The child born in the case's birth year (the case record says so)."""
    if case.birth_year is None:
        return child
    born = child.born
    return replace(child, born=PartialDate(case.birth_year, born.month, born.day))


def plant_links(*, as_of: dt.date) -> PlantedLinks:
    demo = Case.objects.filter(organisation__slug__in=("ngo-a", "ngo-b"))
    if CaseEncoding.objects.filter(case__in=demo).exists():
        return PlantedLinks(created=False, across=[], within=[], encoded=0)
    people = People(PEOPLE_SEED)
    eligible = _eligible(as_of)
    by_fact: dict[tuple[str, int | None, str], list[_Eligible]] = defaultdict(list)
    for case in eligible:
        if case.organisation == "ngo-a":
            by_fact[case.sex, case.birth_year, case.oblast].append(case)
    used: set[int] = set()
    across: list[tuple[_Eligible, _Eligible]] = []
    for case in eligible:
        if len(across) == DEMO_SHARED_CHILDREN:
            break
        if case.organisation != "ngo-b":
            continue
        match = next((a for a in by_fact[case.sex, case.birth_year, case.oblast] if a.id not in used), None)
        if match is not None:
            used.update((case.id, match.id))
            across.append((match, case))
    within: list[tuple[_Eligible, _Eligible]] = []
    for group in by_fact.values():
        free = [case for case in group if case.id not in used]
        if len(free) >= 2 and len(within) < DEMO_TWICE_IN_NGO_A:
            used.update((free[0].id, free[1].id))
            within.append((free[0], free[1]))
    encoder = default_encoder()
    with transaction.atomic():
        for first, second in (*across, *within):
            child = _fitted(next(_children(people, first.sex)), first)
            services.store_encoding(
                case_id=first.id, encoding=encoder.encode(people.report(child, organisation=0, first=True).details)
            )
            _store_close_spelling(people, child, first=first, second=second)
        others = [case for case in eligible if case.id not in used][:: max(1, len(eligible) // DEMO_OTHER_ENCODED)]
        for case in others[:DEMO_OTHER_ENCODED]:
            child = _fitted(next(_children(people, case.sex)), case)
            report = people.report(child, organisation=0, first=True)
            services.store_encoding(case_id=case.id, encoding=encoder.encode(report.details))
        encoded = [case.id for pair in (*across, *within) for case in pair] + [case.id for case in others]
        services.match_cases(encoded)
    return PlantedLinks(
        created=True,
        across=[(a.reference, b.reference) for a, b in across],
        within=[(a.reference, b.reference) for a, b in within],
        encoded=len(encoded),
    )


def _store_close_spelling(people: People, child: Child, *, first: _Eligible, second: _Eligible) -> None:
    """Another organisation's spelling of the child (Russian, Latin, a slip...), drawn until the pair would be
    proposed for review, as most true pairs are."""
    encoder = default_encoder()
    details: IdentifyingDetails | None = None
    for _try in range(_TRIES):
        details = people.report(child, organisation=1, first=False).details
        services.store_encoding(case_id=second.id, encoding=encoder.encode(details), merge=False)
        pairs = services.candidate_pairs([second.id], threshold=_review_score())
        if any({pair.a, pair.b} == {first.id, second.id} for pair in pairs):
            return
    raise RuntimeError("No spelling of a planted child scored for review: the demo's seed needs a look.")


def _review_score() -> float:
    from django.conf import settings

    return float(settings.LINKAGE_REVIEW_SCORE)


def planted_candidates(planted: PlantedLinks) -> list[Candidate]:
    """The candidate pairs of the planted children across organisations (for the tests and the output)."""
    references = {reference for pair in planted.across for reference in pair}
    return list(
        Candidate.objects.filter(case_a__reference__in=references, case_b__reference__in=references).select_related(
            "case_a", "case_b"
        )
    )
