"""Reads of linkage, always scoped to the reader (accounts.permissions).

- The review queues: pairs across organisations, for the host organisation's supervisors only; pairs
  within an organisation, for its supervisors. To anyone else a pair is absent (a 404).
- A pair's anonymised facts side by side, how far each encoded detail agrees (never a value), and its
  trail of decisions.
- The case page's section: whether the case is linked to another report of the same child (never
  which), and, for its organisation's supervisors, the possible duplicates to review.
- ``confirmed_groups``: the cases that confirmed links make one child (DESIGN.md section 4).
- ``duplicate_pairs``: every pair above a score, compared afresh (``manage.py find_duplicates``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import permissions
from accounts.requests import signed_in_user
from casework.models import SIDE_STATUSES, Case
from linkage import services
from linkage.encoding import FIELDS
from linkage.matching import Record
from linkage.models import Candidate, CaseEncoding, Decision, LinkDecision, MatchJob
from linkage.similarity import field_scores

QUEUE_RELATED = (
    "case_a__organisation",
    "case_b__organisation",
    "case_a__institution",
    "case_b__institution",
)


def review_pairs(user: Any, *, across: bool, decided: bool = False) -> QuerySet[Candidate]:
    """The pairs this user reviews (none when they may not): undecided ones best first, or decided ones
    latest first. Undecided pairs where either case is already closed as a duplicate or withdrawn are
    not waiting for anyone."""
    pairs = Candidate.objects.select_related(*QUEUE_RELATED)
    if across:
        if not permissions.can_review_links_across(user):
            return Candidate.objects.none()
        pairs = pairs.filter(across_organisations=True)
    else:
        if not permissions.can_review_links_within(user, user.organisation_id):
            return Candidate.objects.none()
        pairs = pairs.filter(across_organisations=False, case_a__organisation_id=user.organisation_id)
    if decided:
        return pairs.exclude(decision="").order_by("-decided_at", "-id")
    return (
        pairs.filter(decision="")
        .exclude(case_a__status__in=SIDE_STATUSES)
        .exclude(case_b__status__in=SIDE_STATUSES)
        .order_by("-score", "id")
    )


def open_counts(user: Any) -> dict[str, int]:
    """How many pairs wait in each queue this user reviews (one query per queue)."""
    counts: dict[str, int] = {}
    if permissions.can_review_links_across(user):
        counts["across"] = review_pairs(user, across=True).count()
    if permissions.can_review_links_within(user, user.organisation_id):
        counts["within"] = review_pairs(user, across=False).count()
    return counts


def get_pair(user: Any, pk: int) -> Candidate | None:
    """The pair, if this user reviews it; None otherwise (a 404, whether or not it exists)."""
    if not 0 < pk < 2**63:  # a number no row can have: the database would refuse it
        return None
    candidate = Candidate.objects.select_related(*QUEUE_RELATED).filter(pk=pk).first()
    if candidate is None or not services.may_review(user, candidate):
        return None
    return candidate


# --- a pair, side by side -----------------------------------------------------------------------

DETAIL_LABELS = {
    "given_name": _("Given name"),
    "family_name": _("Family name"),
    "patronymic": _("Patronymic"),
    "birth_date": _("Date of birth"),
    "birth_place": _("Place of birth"),
}


@dataclass(frozen=True)
class Agreement:
    """How far one encoded detail agrees: a word, a level for the page's styling, and the Dice score."""

    label: Any
    level: str
    words: Any
    score: float | None


def _agreement(name: str, score: float | None) -> Agreement:
    label = DETAIL_LABELS[name]
    if score is None:
        return Agreement(label, "absent", _("not given in both"), None)
    if score >= 0.95:
        return Agreement(label, "same", _("the same"), score)
    if score >= 0.8:
        return Agreement(label, "close", _("close (another spelling, a slip)"), score)
    if score >= 0.5:
        return Agreement(label, "partly", _("partly alike"), score)
    return Agreement(label, "different", _("different"), score)


def agreements(candidate: Candidate) -> list[Agreement]:
    """How each encoded detail of the pair agrees (two rows read; no value is, or could be, shown)."""
    records: dict[int, Record] = services.load_records([candidate.case_a_id, candidate.case_b_id])
    a, b = records.get(candidate.case_a_id), records.get(candidate.case_b_id)
    if a is None or b is None:
        return []
    return [_agreement(name, score) for name, score in zip(FIELDS, field_scores(a.filters, b.filters), strict=True)]


def trail(candidate: Candidate) -> list[LinkDecision]:
    return list(candidate.decisions.select_related("decided_by", "organisation").order_by("decided_at", "id"))


# --- the case page ---------------------------------------------------------------------------------


def case_section(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    """The case page's linkage section, for a reader of the case (casework already checked that).

    Every reader sees whether the case is confirmed as the same child as another report, and never which
    one, nor in which organisation. Its organisation's supervisors also see its possible duplicates
    within the organisation, to review. Nothing to say: no section. One or two queries.
    """
    user = signed_in_user(request)
    pairs = Candidate.objects.filter(Q(case_a=case) | Q(case_b=case))
    reviewer = permissions.can_review_links_within(user, case.organisation_id)
    rows = list(
        pairs.filter(Q(decision=Decision.SAME) | Q(decision="", across_organisations=False)).values_list(
            "pk", "case_a_id", "case_b_id", "decision", "across_organisations", "decided_at", "score"
        )
    )
    linked_at = [decided_at for _pk, _a, _b, decision, _across, decided_at, _score in rows if decision and decided_at]
    waiting_ids = {
        pk: (b if a == case.pk else a)
        for pk, a, b, decision, across, _at, _score in rows
        if reviewer and not decision and not across
    }
    if not linked_at and not waiting_ids:
        return None
    references = dict(Case.objects.filter(pk__in=waiting_ids.values()).values_list("pk", "reference"))
    scores = {pk: score for pk, *_rest, score in rows}
    return {
        "linked": bool(linked_at),
        "linked_since": min(linked_at) if linked_at else None,
        "waiting": [
            {"pk": pk, "reference": references[other], "score": scores[pk]}
            for pk, other in waiting_ids.items()
            if other in references
        ],
    }


# --- children, for the figures -------------------------------------------------------------------------


def confirmed_links() -> list[tuple[int, int]]:
    """The pairs of cases whose latest decision is "same child", read from the append-only trail (one query):
    the trail, not the pairs' cached state, is what a change must go through and leaves a trace in."""
    latest: dict[tuple[int, int], str] = {}
    for a, b, decision in LinkDecision.objects.order_by("decided_at", "id").values_list(
        "case_a_id", "case_b_id", "decision"
    ):
        latest[min(a, b), max(a, b)] = decision
    return [pair for pair, decision in latest.items() if decision == Decision.SAME]


def confirmed_groups() -> list[list[int]]:
    """The cases confirmed as one child, each group of two or more (one query): the connected components
    of the pairs whose latest decision is "same child". A case in no group is a child of its own."""
    parent: dict[int, int] = {}

    def root(case_id: int) -> int:
        parent.setdefault(case_id, case_id)
        while parent[case_id] != case_id:
            parent[case_id] = parent[parent[case_id]]
            case_id = parent[case_id]
        return case_id

    for a, b in confirmed_links():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for case_id in parent:
        groups.setdefault(root(case_id), []).append(case_id)
    return sorted(sorted(group) for group in groups.values())


# --- the command line ----------------------------------------------------------------------------------

FULL_PASS_CHUNK = 2000


def duplicate_pairs(*, threshold: float, organisation_id: int | None = None) -> Iterator[tuple[str, str, float]]:
    """Every pair of encoded cases (of one organisation: both its cases) scoring at least ``threshold``,
    compared afresh, as (reference_a, reference_b, score), best first."""
    encoded = CaseEncoding.objects.order_by("case_id")
    if organisation_id is not None:
        encoded = encoded.filter(case__organisation_id=organisation_id)
    ids = list(encoded.values_list("case_id", flat=True))
    found: dict[tuple[int, int], float] = {}
    for start in range(0, len(ids), FULL_PASS_CHUNK):
        for pair in services.candidate_pairs(ids[start : start + FULL_PASS_CHUNK], threshold=threshold):
            found[pair.a, pair.b] = pair.score
    involved = {case_id for pair in found for case_id in pair}
    cases = {
        pk: (reference, owner)
        for pk, reference, owner in Case.objects.filter(pk__in=involved).values_list(
            "pk", "reference", "organisation_id"
        )
    }
    for (a, b), score in sorted(found.items(), key=lambda item: (-item[1], item[0])):
        if organisation_id is not None and not cases[a][1] == cases[b][1] == organisation_id:
            continue
        yield cases[a][0], cases[b][0], score


def recent_jobs(limit: int = 5) -> list[MatchJob]:
    return list(MatchJob.objects.order_by("-created_at", "-id")[:limit])
