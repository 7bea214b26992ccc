"""The generator of synthetic cases and histories, shared by the demo (devdata.demo) and data at scale (devdata.scale).

Everything here is invented. No real child, relative, institution or place
other than an oblast appears. Each case's history is built as a plan of
moves, dated, then recorded move by move; with ``check`` every move goes
through ``casework.services.check_move``, the rules a person's edit goes
through. Everything random comes from one seeded ``random.Random``, so a run
can be reproduced (case references excepted: they are unguessable by design).
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from accounts.models import Organisation
from casework.models import (
    MAIN_PATH,
    RETURNED_STATUSES,
    SIDE_STATUSES,
    Institution,
    Oblast,
    Placement,
    Sex,
    Source,
    Status,
)
from casework.services import Move, MoveKind, check_move, classify_move

T = TypeVar("T")

# Plain strings: the generator's loops hash statuses a great deal, and
# members of a str enum hash slowly.
REPORTED: str = Status.REPORTED.value
VERIFIED: str = Status.VERIFIED.value
LOCATED: str = Status.LOCATED.value
RETURN_REQUESTED: str = Status.RETURN_REQUESTED.value
REPATRIATED: str = Status.REPATRIATED.value
REUNIFIED: str = Status.REUNIFIED.value
DUPLICATE: str = Status.DUPLICATE.value
WITHDRAWN: str = Status.WITHDRAWN.value
_PATH: tuple[str, ...] = tuple(str(status) for status in MAIN_PATH)
_SIDE: frozenset[str] = frozenset(str(status) for status in SIDE_STATUSES)
_RETURNED: frozenset[str] = frozenset(str(status) for status in RETURNED_STATUSES)
_LOCATED_AT = _PATH.index(LOCATED)
_REPATRIATED_AT = _PATH.index(REPATRIATED)
_KINDS: dict[tuple[str, str], MoveKind] = {
    (current, to): classify_move(current, to) for current in Status.values for to in Status.values
}


FIRST_REPORT = dt.date(2022, 2, 24)
# Created by a data migration (accounts); recreated by the demo if removed.
INTERMEDIARIES: tuple[tuple[str, str, str], ...] = (
    ("qatar", "State of Qatar", "Держава Катар"),
    ("vatican", "Holy See (Vatican)", "Святий Престол (Ватикан)"),
    ("south-africa", "Republic of South Africa", "Південно-Африканська Республіка"),
    ("icrc", "International Committee of the Red Cross", "Міжнародний комітет Червоного Хреста"),
)


# --- weighted tables ---------------------------------------------------------


class _Weighted(Generic[T]):
    """A weighted choice, faster than ``rng.choices`` when drawn one at a time."""

    def __init__(self, table: Iterable[tuple[T, float]]) -> None:
        pairs = list(table)
        self.values = [value for value, _weight in pairs]
        self.cumulative = list(itertools.accumulate(weight for _value, weight in pairs))
        self.total = self.cumulative[-1]
        self.last = len(pairs) - 1

    def pick(self, rng: random.Random) -> T:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.total, 0, self.last)]


# The oblasts most children were deported from carry most of the weight.
_HEAVY_OBLASTS: dict[str, float] = {
    Oblast.DONETSK: 21,
    Oblast.KHERSON: 18,
    Oblast.ZAPORIZHZHIA: 15,
    Oblast.LUHANSK: 14,
    Oblast.KHARKIV: 12,
    Oblast.CRIMEA: 7,
    Oblast.MYKOLAIV: 3,
    Oblast.SEVASTOPOL: 1.5,
    Oblast.DNIPROPETROVSK: 1.2,
    Oblast.KYIV: 1,
    Oblast.CHERNIHIV: 0.8,
    Oblast.SUMY: 0.8,
}
_OBLASTS = _Weighted((code, _HEAVY_OBLASTS.get(code, 0.15)) for code in Oblast.values)
_SEXES = _Weighted([(Sex.FEMALE, 47), (Sex.MALE, 49), (Sex.UNKNOWN, 4)])
# Age at the time of the report: teenagers are over-represented.
_AGES = _Weighted(zip(range(18), (1, 1, 1.5, 1.5, 2, 2.5, 3, 3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7, 7, 6), strict=True))
_SOURCES = _Weighted(
    [
        (Source.FAMILY, 45),
        (Source.AUTHORITY_REGISTER, 15),
        (Source.PARTNER_NGO, 20),
        (Source.OPEN_SOURCE, 12),
        (Source.SELF_REPORT, 3),
        ("", 5),
    ]
)
_PLACEMENTS = _Weighted(
    [
        (Placement.CAMP, 18),
        (Placement.BOARDING_SCHOOL, 12),
        (Placement.INSTITUTION, 14),
        (Placement.FOSTER_FAMILY, 10),
        (Placement.RELATIVES, 8),
        (Placement.UNKNOWN, 28),
        ("", 10),
    ]
)
# Which kinds of institution a placement can point at.
_INSTITUTION_KINDS_FOR_PLACEMENT: dict[str, tuple[str, ...]] = {
    Placement.CAMP: (Institution.Kind.CAMP,),
    Placement.BOARDING_SCHOOL: (Institution.Kind.BOARDING_SCHOOL,),
    Placement.INSTITUTION: (Institution.Kind.ORPHANAGE, Institution.Kind.HOSPITAL, Institution.Kind.OTHER),
}

# Days between a move and the one before it, by the status moved to.
_GAPS: dict[str, tuple[int, int]] = {
    REPORTED: (5, 120),
    VERIFIED: (2, 75),
    LOCATED: (7, 240),
    RETURN_REQUESTED: (10, 180),
    REPATRIATED: (20, 330),
    REUNIFIED: (0, 21),
    DUPLICATE: (1, 90),
    WITHDRAWN: (5, 180),
}
_CORRECTION_GAP = (3, 120)

# Intermediaries credited with returns, and from when they acted.
_RETURN_VIAS: tuple[tuple[str | None, float, dt.date], ...] = (
    ("qatar", 4, dt.date(2023, 6, 1)),
    ("vatican", 3, dt.date(2023, 1, 1)),
    ("south-africa", 2, dt.date(2024, 1, 1)),
    (None, 4, dt.date.min),
)

# Notes hold no names, dates, numbers or places: they must pass screen_text.
CASE_NOTES: tuple[str, ...] = (
    "Reported through the family hotline; relatives are in contact with the office.",
    "Seen in an open-source video published by the placement.",
    "A sibling's case is recorded separately.",
    "Family asks for updates through the regional office.",
    "Child reportedly moved between placements.",
    "Awaiting confirmation from a partner organisation.",
    "Relatives abroad asked to be kept informed.",
    "Reporter prefers contact through the partner NGO.",
)
FORWARD_NOTES: dict[str, tuple[str, ...]] = {
    VERIFIED: ("Confirmed by a second source.", "Matched against the authority register."),
    LOCATED: ("Location confirmed by a partner organisation.", "Placement identified from open sources."),
    RETURN_REQUESTED: ("Return request submitted.", "Request passed on through the intermediary."),
    REPATRIATED: ("Child crossed back into Ukraine.", "Return confirmed by the receiving authority."),
    REUNIFIED: ("Reunited with family.", "Placed with relatives after return."),
}
VERIFICATION_CORRECTIONS: tuple[str, ...] = (
    "Correction: the register entry used for verification belonged to another child.",
    "Correction: the confirming source withdrew its statement.",
)
FALSE_RETURN_CORRECTIONS: tuple[str, ...] = (
    "Correction: the reported return was not confirmed; the child is still at the placement.",
    "Correction: the return was recorded on the wrong case.",
)
REUNIFICATION_CORRECTIONS: tuple[str, ...] = (
    "Correction: the child is still in temporary care; reunification has not happened yet.",
)
DUPLICATE_NOTES: tuple[str, ...] = (
    "Same child as the surviving case, reported by another source.",
    "Merged: the same child was reported twice.",
)
REOPENED_DUPLICATE_NOTES: tuple[str, ...] = (
    "Correction: not a duplicate after all; birth years and oblasts differ.",
    "Correction: two different children, wrongly merged.",
)
WITHDRAWAL_REASONS: tuple[str, ...] = (
    "The reporter withdrew the report.",
    "The child stayed in Ukraine: the report was mistaken.",
    "No source could confirm the report.",
    "Reported in error: the child was already home.",
)
REOPENED_WITHDRAWAL_NOTES: tuple[str, ...] = (
    "Correction: a second source confirmed the report.",
    "Correction: withdrawn by mistake.",
)

# Twists: the less common shapes a history can take.
PLAIN = "plain"
VERIFICATION_CORRECTED = "verification_corrected"
FALSE_RETURN = "false_return"
REUNIFICATION_CORRECTED = "reunification_corrected"
REOPENED_DUPLICATE = "reopened_duplicate"
REOPENED_WITHDRAWAL = "reopened_withdrawal"

_UTC = dt.UTC
# Recording times are kept between 06:00 and 21:00 UTC, so the recording
# date in Kyiv (UTC+2/+3) is the date the change occurred.
_DAY_START = 6 * 3600
_DAY_LAST = 21 * 3600 - 1


# --- what is generated -------------------------------------------------------


@dataclass(slots=True)
class ChangeSpec:
    from_status: str
    to_status: str
    occurred_on: dt.date
    recorded_at: dt.datetime
    recorded_by_id: int | None
    recorded_via: str
    via_slug: str | None
    note: str
    duplicate_of: CaseSpec | None
    is_correction: bool
    version: int


@dataclass(slots=True, eq=False)
class CaseSpec:
    organisation_id: int
    reported_on: dt.date
    created_at: dt.datetime
    sex: str = Sex.UNKNOWN
    birth_year: int | None = None
    oblast: str = Oblast.DONETSK
    displaced_on: dt.date | None = None
    displaced_precision: str = ""
    source: str = ""
    placement: str = ""
    institution_id: int | None = None
    assigned_to_id: int | None = None
    risk_adoption: bool = False
    risk_citizenship: bool = False
    risk_military: bool = False
    risk_medical: bool = False
    notes: str = ""
    changes: list[ChangeSpec] = field(default_factory=list)
    pk: int | None = None

    @property
    def status(self) -> str:
        return self.changes[-1].to_status if self.changes else REPORTED

    @property
    def version(self) -> int:
        return 1 + len(self.changes)

    @property
    def last_change_at(self) -> dt.datetime | None:
        return self.changes[-1].recorded_at if self.changes else None


@dataclass(frozen=True)
class Recorders:
    """Who records moves for an organisation: users, or a label when there are none."""

    forward: tuple[int, ...] = ()
    supervisors: tuple[int, ...] = ()
    assignees: tuple[int, ...] = ()
    label: str = "synthetic data generator"


@dataclass
class _Step:
    to: str
    gap: int
    note: str = ""
    duplicate_of: CaseSpec | None = None
    false_return: bool = False
    via_slug: str | None = None
    occurred_on: dt.date = dt.date.min


class _Generator:
    """Random case records and histories for one run; everything random comes from ``rng``."""

    def __init__(
        self,
        rng: random.Random,
        *,
        today: dt.date,
        vias: Mapping[str, Organisation],
        institutions: Sequence[Institution],
        check: bool = True,
        skip: float = 0.2,
    ) -> None:
        self.rng = rng
        self.today = today
        self.vias = vias
        self.check = check
        self.skip = skip
        self.institutions_by_kind: dict[str, list[int]] = {}
        for institution in institutions:
            self.institutions_by_kind.setdefault(institution.kind, []).append(institution.pk)
        self.return_vias = [
            (slug, weight, since) for slug, weight, since in _RETURN_VIAS if slug is None or slug in vias
        ]

    # -- the record ----------------------------------------------------------

    def case(self, *, organisation_id: int, reported_on: dt.date, recorders: Recorders) -> CaseSpec:
        rng = self.rng
        sex = _SEXES.pick(rng)
        age = _AGES.pick(rng)
        birth_year = None if rng.random() < 0.07 else max(2005, min(2022, reported_on.year - age))
        placement = _PLACEMENTS.pick(rng)
        institution_id = None
        kinds = _INSTITUTION_KINDS_FOR_PLACEMENT.get(placement)
        if kinds and rng.random() < 0.15:
            candidates = [pk for kind in kinds for pk in self.institutions_by_kind.get(kind, ())]
            if candidates:
                institution_id = rng.choice(candidates)
        displaced_on = None
        precision = ""
        if rng.random() < 0.65:
            displaced_on = max(FIRST_REPORT, reported_on - dt.timedelta(days=int(rng.random() * 400)))
            if rng.random() < 0.4:
                displaced_on, precision = displaced_on.replace(day=1), "month"
            else:
                precision = "day"
        teenager = age >= 13
        created = dt.datetime(reported_on.year, reported_on.month, reported_on.day, tzinfo=_UTC)
        return CaseSpec(
            organisation_id=organisation_id,
            reported_on=reported_on,
            created_at=created + dt.timedelta(seconds=_DAY_START + int(rng.random() * 8 * 3600)),
            sex=sex,
            birth_year=birth_year,
            oblast=_OBLASTS.pick(rng),
            displaced_on=displaced_on,
            displaced_precision=precision,
            source=_SOURCES.pick(rng),
            placement=placement,
            institution_id=institution_id,
            assigned_to_id=rng.choice(recorders.assignees) if recorders.assignees and rng.random() < 0.85 else None,
            risk_adoption=rng.random() < (0.25 if placement == Placement.FOSTER_FAMILY else 0.03),
            risk_citizenship=rng.random() < 0.18,
            risk_military=rng.random() < ((0.28 if sex == Sex.MALE else 0.12) if teenager else 0.01),
            risk_medical=rng.random() < 0.06,
            notes=rng.choice(CASE_NOTES) if rng.random() < 0.12 else "",
        )

    # -- the history ---------------------------------------------------------

    def _gap(self, to: str) -> int:
        low, high = _GAPS[to]
        return low + int(self.rng.random() * (high - low + 1))

    def _correction_gap(self) -> int:
        low, high = _CORRECTION_GAP
        return low + int(self.rng.random() * (high - low + 1))

    def _forward(self, start: int, stop: int) -> list[_Step]:
        """Moves along the main path from index ``start`` to ``stop``, skipping some steps."""
        steps = []
        for index in range(start + 1, stop + 1):
            if index < stop and self.rng.random() < self.skip:
                continue
            status = _PATH[index]
            note = self.rng.choice(FORWARD_NOTES[status]) if self.rng.random() < 0.1 else ""
            steps.append(_Step(status, self._gap(status), note=note))
        return steps

    def plan(self, *, final: str, twist: str = PLAIN, survivor: CaseSpec | None = None) -> list[_Step]:
        """The moves that take a new case to ``final``, shaped by ``twist``."""
        rng = self.rng
        steps: list[_Step] = []
        at = 0
        target = _PATH.index(final) if final not in _SIDE else 0
        if twist == VERIFICATION_CORRECTED:
            steps.append(_Step(VERIFIED, self._gap(VERIFIED)))
            steps.append(_Step(REPORTED, self._correction_gap(), note=rng.choice(VERIFICATION_CORRECTIONS)))
        elif twist in {REOPENED_DUPLICATE, REOPENED_WITHDRAWAL}:
            if rng.random() < 0.4:
                steps.append(_Step(VERIFIED, self._gap(VERIFIED)))
            if twist == REOPENED_DUPLICATE:
                assert survivor is not None
                steps.append(
                    _Step(
                        DUPLICATE,
                        self._gap(DUPLICATE),
                        note=rng.choice(DUPLICATE_NOTES),
                        duplicate_of=survivor,
                    )
                )
                reason = rng.choice(REOPENED_DUPLICATE_NOTES)
            else:
                steps.append(_Step(WITHDRAWN, self._gap(WITHDRAWN), note=rng.choice(WITHDRAWAL_REASONS)))
                reason = rng.choice(REOPENED_WITHDRAWAL_NOTES)
            at = 1 if target >= 1 and rng.random() < 0.6 else 0
            steps.append(_Step(_PATH[at], self._correction_gap(), note=reason))

        if final in _SIDE:
            steps.extend(self._forward(at, rng.choice((0, 0, 1, 1, 2))))
            if final == DUPLICATE:
                assert survivor is not None
                steps.append(
                    _Step(
                        DUPLICATE,
                        self._gap(DUPLICATE),
                        note=rng.choice(DUPLICATE_NOTES) if rng.random() < 0.6 else "",
                        duplicate_of=survivor,
                    )
                )
            else:
                steps.append(_Step(WITHDRAWN, self._gap(WITHDRAWN), note=rng.choice(WITHDRAWAL_REASONS)))
            return steps

        if twist == FALSE_RETURN:
            assert target >= _LOCATED_AT
            steps.extend(self._forward(at, _LOCATED_AT))
            steps.append(_Step(REPATRIATED, self._gap(REPATRIATED), false_return=True))
            steps.append(_Step(LOCATED, self._correction_gap(), note=rng.choice(FALSE_RETURN_CORRECTIONS)))
            at = _LOCATED_AT
        if twist == REUNIFICATION_CORRECTED:
            assert final == REPATRIATED
            steps.extend(self._forward(at, _REPATRIATED_AT))
            steps.append(_Step(REUNIFIED, self._gap(REUNIFIED)))
            steps.append(_Step(REPATRIATED, self._correction_gap(), note=rng.choice(REUNIFICATION_CORRECTIONS)))
            return steps
        if final == REUNIFIED and at < _REPATRIATED_AT:
            # Most children are repatriated before being reunified; a few go straight home to relatives.
            stop = _REPATRIATED_AT if rng.random() < 0.85 else _LOCATED_AT
            steps.extend(self._forward(at, max(at, stop)))
            at = max(at, stop)
        steps.extend(self._forward(at, target))
        return steps

    def _date(self, steps: list[_Step], reported_on: dt.date, end: dt.date) -> None:
        """Give each step a date: gaps as drawn, squeezed to fit between the report and ``end``."""
        available = (end - reported_on).days
        total = sum(step.gap for step in steps)
        if total > available:
            # Squeezed into a random share of the time there was, so squeezed
            # histories do not all end on the last day.
            available = int(available * (0.3 + 0.7 * self.rng.random()))
        cumulative = 0
        for step in steps:
            cumulative += step.gap
            offset = cumulative if total <= available else cumulative * available // total
            step.occurred_on = reported_on + dt.timedelta(days=offset)

    def _pick_return_via(self, day: dt.date) -> str | None:
        rng = self.rng
        options = [(slug, weight) for slug, weight, since in self.return_vias if day >= since]
        point = rng.random() * sum(weight for _slug, weight in options)
        for slug, weight in options:
            point -= weight
            if point < 0:
                return slug
        return options[-1][0]

    def _assign_vias(self, steps: list[_Step]) -> None:
        rng = self.rng
        status: str = REPORTED
        return_steps: set[int] = set()
        for index, step in enumerate(steps):
            if step.to in _RETURNED and status not in _RETURNED:
                return_steps.add(index)
                if step.false_return:
                    step.via_slug = None if rng.random() < 0.7 else self._pick_return_via(step.occurred_on)
                else:
                    step.via_slug = self._pick_return_via(step.occurred_on)
            status = step.to
        next_return_via: str | None = None
        later_return = False
        for index in range(len(steps) - 1, -1, -1):
            step = steps[index]
            if index in return_steps:
                next_return_via, later_return = step.via_slug, True
            elif step.to == RETURN_REQUESTED:
                if later_return:
                    step.via_slug = next_return_via if rng.random() < 0.8 else None
                elif rng.random() < 0.5:
                    step.via_slug = self._pick_return_via(step.occurred_on)

    def history(
        self,
        case: CaseSpec,
        *,
        final: str,
        end: dt.date,
        recorders: Recorders,
        twist: str = PLAIN,
        survivor: CaseSpec | None = None,
    ) -> None:
        """Give ``case`` a history ending in ``final``, every move checked by the status machine's rules."""
        steps = self.plan(final=final, twist=twist, survivor=survivor)
        self._date(steps, case.reported_on, end)
        self._assign_vias(steps)
        self.record(case, steps, recorders=recorders)

    def record(self, case: CaseSpec, steps: Iterable[_Step], *, recorders: Recorders) -> None:
        rng = self.rng
        status: str = case.status
        last_occurred_on = case.changes[-1].occurred_on if case.changes else None
        version = case.version
        day = case.reported_on
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=_UTC)
        second = int((case.created_at - midnight).total_seconds())
        for step in steps:
            kind = _KINDS[status, step.to]
            by_supervisor = kind is not MoveKind.FORWARD
            via = self.vias[step.via_slug] if step.via_slug else None
            if self.check:
                survivor = step.duplicate_of
                is_correction = check_move(
                    Move(
                        current=status,
                        to=step.to,
                        occurred_on=step.occurred_on,
                        reported_on=case.reported_on,
                        last_occurred_on=last_occurred_on,
                        via=via,
                        note=step.note,
                        duplicate_of_given=survivor is not None,
                        duplicate_of_is_self=survivor is case,
                        duplicate_of_status=survivor.status if survivor is not None else None,
                        duplicate_of_same_organisation=survivor is None
                        or survivor.organisation_id == case.organisation_id,
                    ),
                    can_correct=by_supervisor,
                    today=self.today,
                )
            else:
                is_correction = kind is MoveKind.CORRECTION or (
                    status in _SIDE and kind in {MoveKind.DUPLICATE, MoveKind.WITHDRAW}
                )
            if step.occurred_on != day:
                day = step.occurred_on
                midnight = dt.datetime(day.year, day.month, day.day, tzinfo=_UTC)
                second = _DAY_START + int(rng.random() * 8 * 3600)
            else:
                second = max(second + 1, min(_DAY_LAST, second + 60 + int(rng.random() * 7200)))
            pool = recorders.supervisors if by_supervisor else recorders.forward
            recorded_by = rng.choice(pool) if pool else None
            version += 1
            case.changes.append(
                ChangeSpec(
                    from_status=status,
                    to_status=step.to,
                    occurred_on=step.occurred_on,
                    recorded_at=midnight + dt.timedelta(seconds=second),
                    recorded_by_id=recorded_by,
                    recorded_via="" if recorded_by is not None else recorders.label,
                    via_slug=step.via_slug,
                    note=step.note,
                    duplicate_of=step.duplicate_of,
                    is_correction=is_correction,
                    version=version,
                )
            )
            status = step.to
            last_occurred_on = step.occurred_on


def _report_days(start: dt.date, end: dt.date) -> _Weighted[dt.date]:
    """Report dates: many in the first year of the full-scale invasion, fewer since."""
    weights = {2022: 3.0, 2023: 2.0, 2024: 1.3}
    days = (start + dt.timedelta(days=offset) for offset in range((end - start).days + 1))
    return _Weighted((day, weights.get(day.year, 1.0)) for day in days)


def _weighted_sample(rng: random.Random, items: Sequence[T], weight: Callable[[T], float], k: int) -> list[T]:
    """``k`` items without replacement, each drawn with probability proportional to its weight."""
    keyed = ((rng.random() ** (1.0 / weight(item)), index) for index, item in enumerate(items))
    return [items[index] for _key, index in heapq.nlargest(k, keyed)]
