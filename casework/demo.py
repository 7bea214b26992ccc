"""Synthetic data: the demo register (``seed_demo``) and data at scale (``generate_cases``).

Everything here is invented. No real child, relative, institution or place
other than an oblast appears; organisations and institutions say in their
names that they are synthetic.

Both commands build each case's history as a plan of moves, date it, then
record it move by move. ``seed_demo`` runs every move through
``services.check_move``, the rules a person's edit goes through, so the demo
is data the application itself could have recorded. ``generate_cases`` uses
the same generator but, to load a million cases in minutes, checks moves
only when asked (``--check-moves``); its tests replay what it writes through
the same rules. Everything random comes from one seeded ``random.Random``,
so a run can be reproduced (case references excepted: they are unguessable
by design).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import heapq
import itertools
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import psycopg
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import Organisation, Role, User
from casework.models import (
    MAIN_PATH,
    RETURNED_STATUSES,
    SIDE_STATUSES,
    Case,
    Institution,
    Oblast,
    Placement,
    Sex,
    Source,
    Status,
    StatusChange,
)
from casework.references import ALPHABET, new_references
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

# --- the demo's fixed figures (DESIGN.md section 4) -------------------------

DEMO_AS_OF = dt.date(2025, 2, 2)
DEMO_REPORTED = 20_000
DEMO_REPATRIATED = 1_189
DEMO_NGO_B_CASES = 500
DEMO_DUPLICATES = 412
DEMO_WITHDRAWN = 173
DEMO_SEED = 2025
DEMO_ADMIN_URL = "http://127.0.0.1:8000/admin/"
FIRST_REPORT = dt.date(2022, 2, 24)

DEMO_ORGANISATIONS: tuple[tuple[str, str, str], ...] = (
    ("ngo-a", "NGO A (synthetic demo)", "ГО А (синтетичні демодані)"),
    ("ngo-b", "NGO B (synthetic demo)", "ГО Б (синтетичні демодані)"),
)
# Created by partners/migrations/0002_intermediaries.py; recreated here if removed.
INTERMEDIARIES: tuple[tuple[str, str, str], ...] = (
    ("qatar", "State of Qatar", "Держава Катар"),
    ("vatican", "Holy See (Vatican)", "Святий Престол (Ватикан)"),
    ("south-africa", "Republic of South Africa", "Південно-Африканська Республіка"),
    ("icrc", "International Committee of the Red Cross", "Міжнародний комітет Червоного Хреста"),
)
DEMO_INSTITUTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "crimea-01",
        "Children's home No. 1 (synthetic)",
        "Дитячий будинок № 1 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-02",
        "Boarding school No. 2 (synthetic)",
        "Школа-інтернат № 2 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-03",
        "Children's home No. 3 (synthetic)",
        "Дитячий будинок № 3 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-04",
        "Health camp A (synthetic)",
        "Оздоровчий табір А (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-05",
        "Cadet school No. 1 (synthetic)",
        "Кадетська школа № 1 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-06",
        "Rehabilitation centre No. 1 (synthetic)",
        "Реабілітаційний центр № 1 (синтетичний)",
        Institution.Kind.HOSPITAL,
    ),
    (
        "crimea-07",
        "Sanatorium B (synthetic)",
        "Санаторій Б (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-08",
        "Social shelter No. 4 (synthetic)",
        "Соціальний притулок № 4 (синтетичний)",
        Institution.Kind.OTHER,
    ),
    (
        "crimea-09",
        "Boarding school No. 5 (synthetic)",
        "Школа-інтернат № 5 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-10",
        "Children's home No. 6 (synthetic)",
        "Дитячий будинок № 6 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-11",
        "Children's hospital ward (synthetic)",
        "Дитяче лікарняне відділення (синтетичне)",
        Institution.Kind.HOSPITAL,
    ),
    (
        "crimea-12",
        "Summer camp C (synthetic)",
        "Літній табір В (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-13",
        "Family-type home No. 2 (synthetic)",
        "Будинок сімейного типу № 2 (синтетичний)",
        Institution.Kind.OTHER,
    ),
)
# (username, role, organisation slug, superuser)
DEMO_USERS: tuple[tuple[str, str, str, bool], ...] = (
    ("caseworker", Role.CASEWORKER, "ngo-a", False),
    ("supervisor", Role.SUPERVISOR, "ngo-a", False),
    ("analyst", Role.ANALYST, "ngo-a", False),
    ("orgadmin", Role.ORG_ADMIN, "ngo-a", False),
    ("caseworker-b", Role.CASEWORKER, "ngo-b", False),
    ("admin", Role.ORG_ADMIN, "ngo-a", True),
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


# --- writing -----------------------------------------------------------------


def _taken_references(candidates: Iterable[str]) -> set[str]:
    taken: set[str] = set()
    values = list(candidates)
    for start in range(0, len(values), 5000):
        chunk = values[start : start + 5000]
        taken.update(Case.objects.filter(reference__in=chunk).values_list("reference", flat=True))
    return taken


_BASE32_TO_REFERENCE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


def _random_references(count: int) -> set[str]:
    """Up to ``count`` references in the format of ``references.new_reference``, drawn in one go.

    Five random bytes are exactly eight base-32 characters, so this is the
    same uniform draw as ``new_reference`` without a call per character.
    """
    text = base64.b32encode(secrets.token_bytes(5 * count)).translate(_BASE32_TO_REFERENCE).decode()
    return {f"C-{text[i : i + 4]}-{text[i + 4 : i + 8]}" for i in range(0, 8 * count, 8)}


def _random_references_exactly(count: int) -> set[str]:
    """``count`` distinct references (not checked against the database)."""
    result: set[str] = set()
    while len(result) < count:
        result |= _random_references(count - len(result))
    return result


def fresh_references(count: int) -> list[str]:
    """``count`` distinct references that no case in the database holds yet."""
    result: set[str] = set()
    while len(result) < count:
        candidates = _random_references(count - len(result)) - result
        result |= candidates - _taken_references(candidates)
    return list(result)


@contextmanager
def _keeping_created_at() -> Iterator[None]:
    """Let bulk_create store each case's own ``created_at`` instead of the time of the insert."""
    created_at = Case._meta.get_field("created_at")
    assert isinstance(created_at, models.DateTimeField)
    saved = created_at.auto_now_add
    created_at.auto_now_add = False
    try:
        yield
    finally:
        created_at.auto_now_add = saved


def _write_with_orm(
    specs: Sequence[CaseSpec],
    references: Sequence[str],
    vias: Mapping[str, Organisation],
    *,
    changes_in_recording_order: bool = False,
) -> int:
    """Insert the cases, then their histories, with bulk_create. Returns the number of changes."""
    cases = [
        Case(
            reference=reference,
            organisation_id=spec.organisation_id,
            assigned_to_id=spec.assigned_to_id,
            sex=spec.sex,
            birth_year=spec.birth_year,
            oblast=spec.oblast,
            reported_on=spec.reported_on,
            displaced_on=spec.displaced_on,
            displaced_precision=spec.displaced_precision,
            source=spec.source,
            placement=spec.placement,
            institution_id=spec.institution_id,
            risk_adoption=spec.risk_adoption,
            risk_citizenship=spec.risk_citizenship,
            risk_military=spec.risk_military,
            risk_medical=spec.risk_medical,
            notes=spec.notes,
            status=spec.status,
            version=spec.version,
            created_at=spec.created_at,
            last_change_at=spec.last_change_at,
        )
        for spec, reference in zip(specs, references, strict=True)
    ]
    with _keeping_created_at():
        Case.objects.bulk_create(cases, batch_size=2000)
    for spec, case in zip(specs, cases, strict=True):
        assert case.pk is not None, "the database did not return the new ids"
        spec.pk = case.pk
    pairs: Iterable[tuple[CaseSpec, ChangeSpec]] = ((spec, change) for spec in specs for change in spec.changes)
    if changes_in_recording_order:
        # Ids then follow the recording time across cases, as they would in use.
        pairs = sorted(pairs, key=lambda pair: pair[1].recorded_at)
    rows = [
        StatusChange(
            case_id=_pk(spec),
            from_status=change.from_status,
            to_status=change.to_status,
            occurred_on=change.occurred_on,
            recorded_at=change.recorded_at,
            recorded_by_id=change.recorded_by_id,
            recorded_via=change.recorded_via,
            via=vias[change.via_slug] if change.via_slug else None,
            duplicate_of_id=change.duplicate_of.pk if change.duplicate_of is not None else None,
            note=change.note,
            is_correction=change.is_correction,
            version=change.version,
        )
        for spec, change in pairs
    ]
    StatusChange.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


# --- writing with COPY (PostgreSQL) -------------------------------------------

_CASE_COLUMNS = (
    "id",
    "reference",
    "organisation_id",
    "assigned_to_id",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "displaced_precision",
    "source",
    "placement",
    "institution_id",
    "risk_adoption",
    "risk_citizenship",
    "risk_military",
    "risk_medical",
    "status",
    "version",
    "notes",
    "created_at",
    "updated_at",
    "last_change_at",
)
_CHANGE_COLUMNS = (
    "case_id",
    "from_status",
    "to_status",
    "occurred_on",
    "recorded_at",
    "recorded_by_id",
    "recorded_via",
    "via_id",
    "duplicate_of_id",
    "note",
    "is_correction",
    "version",
)
_NULL = "\\N"


def _pk(spec: CaseSpec) -> int:
    assert spec.pk is not None, "the case is not stored yet"
    return spec.pk


def _copy_text(value: object) -> str:
    """One value in COPY's text format."""
    if value is None:
        return _NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_defaults(model: type[models.Model], given: Sequence[str]) -> tuple[list[str], str]:
    """Columns this module does not fill (added since, say), and their defaults as a COPY line's tail."""
    columns, values = [], []
    for model_field in model._meta.concrete_fields:
        if model_field.attname in given or model_field.primary_key:
            continue
        assert model_field.column is not None
        columns.append(model_field.column)
        values.append(_copy_text(model_field.get_db_prep_save(model_field.get_default(), connection)))
    return columns, "".join(f"\t{value}" for value in values)


def _copy_statement(model: type[models.Model], columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )


def _deferred_foreign_keys(cursor: psycopg.Cursor[Any], models_: Sequence[type[models.Model]]) -> list[str]:
    """Names of the deferred foreign keys on these models' tables (Django creates them all deferred)."""
    cursor.execute(
        "SELECT conname FROM pg_constraint"
        " WHERE contype = 'f' AND condeferrable AND condeferred AND conrelid = ANY(%s::regclass[])",
        [[model._meta.db_table for model in models_]],
    )
    return [row[0] for row in cursor.fetchall()]


def _set_constraints(cursor: psycopg.Cursor[Any], names: Sequence[str], mode: str) -> None:
    if names:
        cursor.execute(
            sql.SQL("SET CONSTRAINTS {} {}").format(
                sql.SQL(", ").join(sql.Identifier(name) for name in names), sql.SQL(mode)
            )
        )


def _reserve_ids(cursor: psycopg.Cursor[Any], model: type[models.Model], count: int) -> Iterator[int]:
    """``count`` ids from the table's own sequence, so inserts by others, now or later, never collide.

    The database answers with runs of consecutive ids rather than every id.
    """
    cursor.execute(
        "SELECT min(id), max(id) FROM ("
        "  SELECT id, id - row_number() OVER (ORDER BY id) AS run FROM ("
        "    SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id FROM generate_series(1, %s)"
        "  ) AS reserved"
        ") AS numbered GROUP BY run ORDER BY 1",
        [model._meta.db_table, count],
    )
    return itertools.chain.from_iterable(range(first, last + 1) for first, last in cursor.fetchall())


@dataclass
class _CopyChunk:
    references: list[str]
    case_lines: list[str]  # one per case, in the order of ``references``
    change_text: str


class _CopyFormatter:
    """Turns generated cases into COPY text, giving them ids from a reserved run."""

    def __init__(self, ids: Iterator[int], vias: Mapping[str, Organisation]) -> None:
        self.ids = ids
        self.via_ids = {slug: str(organisation.pk) for slug, organisation in vias.items()}
        self.case_tail = _copy_defaults(Case, _CASE_COLUMNS)[1]
        self.change_tail = _copy_defaults(StatusChange, _CHANGE_COLUMNS)[1]
        self.now = str(timezone.now())

    def chunk(self, specs: Sequence[CaseSpec], references: list[str]) -> _CopyChunk:
        for spec in specs:
            spec.pk = next(self.ids)
        # Inlined conversions: this loop formats some four million rows for a million cases.
        n, t = _NULL, _copy_text
        now, via_ids, case_tail, change_tail = self.now, self.via_ids, self.case_tail, self.change_tail
        case_lines = []
        change_lines = []
        for spec, reference in zip(specs, references, strict=True):
            changes = spec.changes
            if changes:
                status, last_change_at = changes[-1].to_status, str(changes[-1].recorded_at)
            else:
                status, last_change_at = REPORTED, n
            case_lines.append(
                f"{spec.pk}\t{reference}\t{spec.organisation_id}\t"
                f"{n if spec.assigned_to_id is None else spec.assigned_to_id}\t{spec.sex}\t"
                f"{n if spec.birth_year is None else spec.birth_year}\t{spec.oblast}\t{spec.reported_on}\t"
                f"{n if spec.displaced_on is None else spec.displaced_on}\t{spec.displaced_precision}\t"
                f"{spec.source}\t{spec.placement}\t{n if spec.institution_id is None else spec.institution_id}\t"
                f"{'t' if spec.risk_adoption else 'f'}\t{'t' if spec.risk_citizenship else 'f'}\t"
                f"{'t' if spec.risk_military else 'f'}\t{'t' if spec.risk_medical else 'f'}\t"
                f"{status}\t{1 + len(changes)}\t{t(spec.notes) if spec.notes else ''}\t"
                f"{spec.created_at}\t{now}\t{last_change_at}{case_tail}\n"
            )
            for change in changes:
                survivor = change.duplicate_of
                change_lines.append(
                    f"{spec.pk}\t{change.from_status}\t{change.to_status}\t{change.occurred_on}\t"
                    f"{change.recorded_at}\t{n if change.recorded_by_id is None else change.recorded_by_id}\t"
                    f"{t(change.recorded_via) if change.recorded_via else ''}\t"
                    f"{via_ids[change.via_slug] if change.via_slug else n}\t"
                    f"{n if survivor is None else survivor.pk}\t{t(change.note) if change.note else ''}\t"
                    f"{'t' if change.is_correction else 'f'}\t{change.version}{change_tail}\n"
                )
        return _CopyChunk(references=references, case_lines=case_lines, change_text="".join(change_lines))


class _CopyStream:
    """Writes chunks with COPY from a worker thread, so PostgreSQL stores one chunk while the next is generated.

    The worker uses the caller's connection, inside the caller's transaction;
    the caller must not use the connection until the stream is closed.
    """

    def __init__(self, pg: psycopg.Connection[Any]) -> None:
        self.pg = pg
        self.case_copy = _copy_statement(Case, [*_CASE_COLUMNS, *_copy_defaults(Case, _CASE_COLUMNS)[0]])
        self.change_copy = _copy_statement(
            StatusChange, [*_CHANGE_COLUMNS, *_copy_defaults(StatusChange, _CHANGE_COLUMNS)[0]]
        )
        # Two chunks waiting at most: enough to keep both sides busy, little memory.
        self.queue: queue.Queue[_CopyChunk | None] = queue.Queue(maxsize=2)
        self.cancelled = threading.Event()
        self.error: BaseException | None = None
        self.worker = threading.Thread(target=self._work, name="generate_cases COPY", daemon=True)

    def __enter__(self) -> _CopyStream:
        self.worker.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.cancelled.set()
        self._put(None)
        self.worker.join()
        if exc is None and self.error is not None:
            raise self.error

    def send(self, chunk: _CopyChunk) -> None:
        self._put(chunk)

    def _put(self, item: _CopyChunk | None) -> None:
        while self.worker.is_alive():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        if item is not None and self.error is not None:
            raise self.error

    def _work(self) -> None:
        try:
            with self.pg.cursor() as cursor:
                while (chunk := self.queue.get()) is not None:
                    if self.cancelled.is_set():
                        continue
                    self._settle_references(cursor, chunk)
                    with cursor.copy(self.case_copy) as copy:
                        copy.write("".join(chunk.case_lines))
                    with cursor.copy(self.change_copy) as copy:
                        copy.write(chunk.change_text)
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc

    @staticmethod
    def _settle_references(cursor: psycopg.Cursor[Any], chunk: _CopyChunk) -> None:
        """Replace any reference that a case already holds (earlier chunks included: same transaction)."""
        query = f"SELECT reference FROM {Case._meta.db_table} WHERE reference = ANY(%s)"  # noqa: S608
        taken = {row[0] for row in cursor.execute(query, [chunk.references])}
        in_chunk = set(chunk.references)
        while taken:
            for index, reference in enumerate(chunk.references):
                if reference in taken:
                    replacement = next(iter(_random_references(1) - in_chunk), reference)
                    in_chunk.add(replacement)
                    chunk.references[index] = replacement
                    chunk.case_lines[index] = chunk.case_lines[index].replace(reference, replacement, 1)
            taken = {row[0] for row in cursor.execute(query, [chunk.references])}


# --- seed_demo ---------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    organisation: str
    is_superuser: bool


@dataclass
class DemoResult:
    logins: list[Login]
    password: str | None  # None: the demo was loaded before and its passwords were kept
    password_generated: bool
    password_warnings: list[str]
    created: bool
    cases: int  # written by this run
    existing_cases: int  # already held by the demo organisations, when nothing was written
    changes: int
    reported: int
    repatriated: int
    seconds: float


def demo_case_count() -> int:
    """Cases the demo organisations hold: any at all means the demo data is loaded."""
    return Case.objects.filter(organisation__slug__in=[slug for slug, _name, _name_uk in DEMO_ORGANISATIONS]).count()


def _ensure_organisations() -> tuple[dict[str, Organisation], dict[str, Organisation]]:
    ngos = {}
    for slug, name, name_uk in DEMO_ORGANISATIONS:
        ngos[slug], _created = Organisation.objects.update_or_create(
            slug=slug, defaults={"name": name, "name_uk": name_uk, "kind": Organisation.Kind.NGO}
        )
    vias = {}
    for slug, name, name_uk in INTERMEDIARIES:
        vias[slug], _created = Organisation.objects.get_or_create(
            slug=slug, defaults={"name": name, "name_uk": name_uk, "kind": Organisation.Kind.INTERMEDIARY}
        )
    return ngos, vias


def _ensure_institutions() -> list[Institution]:
    institutions = []
    for code, name, name_uk, kind in DEMO_INSTITUTIONS:
        institution, _created = Institution.objects.update_or_create(
            code=code, defaults={"name": name, "name_uk": name_uk, "region": Oblast.CRIMEA.value, "kind": kind}
        )
        institutions.append(institution)
    return institutions


def _ensure_users(ngos: Mapping[str, Organisation], password: str | None) -> dict[str, User]:
    """The demo users, with ``password`` when given (new users without one cannot sign in)."""
    users = {}
    for username, role, organisation, is_superuser in DEMO_USERS:
        user, created = User.objects.update_or_create(
            username=username,
            defaults={
                "organisation": ngos[organisation],
                "role": role,
                "is_staff": is_superuser,
                "is_superuser": is_superuser,
                "is_active": True,
            },
        )
        if password is not None:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        users[username] = user
    return users


def _final_status_by_age(rng: random.Random, days: int) -> str:
    """The status a case not yet returned has reached: older reports have moved further."""
    table: tuple[tuple[str, int], ...]
    if days < 21:
        table = ((REPORTED, 75), (VERIFIED, 25))
    elif days < 120:
        table = ((REPORTED, 45), (VERIFIED, 35), (LOCATED, 20))
    else:
        table = ((REPORTED, 25), (VERIFIED, 30), (LOCATED, 28), (RETURN_REQUESTED, 17))
    return rng.choices([status for status, _w in table], weights=[weight for _s, weight in table])[0]


def build_demo_cases(
    rng: random.Random,
    *,
    ngos: Mapping[str, Organisation],
    users: Mapping[str, User],
    vias: Mapping[str, Organisation],
    institutions: Sequence[Institution],
) -> list[CaseSpec]:
    """The demo's cases and histories, in memory: exactly the figures of DESIGN.md section 4 on DEMO_AS_OF."""
    end = DEMO_AS_OF
    generator = _Generator(rng, today=DEMO_AS_OF, vias=vias, institutions=institutions, check=True)
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    recorders = _demo_recorders(ngos, users)
    report_days = _report_days(FIRST_REPORT, dt.date(2025, 1, 31))

    # Cases counted in the figures: their final status is on the main path.
    counted = []
    in_ngo_b = set(rng.sample(range(DEMO_REPORTED), DEMO_NGO_B_CASES))
    for index in range(DEMO_REPORTED):
        organisation = ngo_b if index in in_ngo_b else ngo_a
        counted.append(
            generator.case(
                organisation_id=organisation, reported_on=report_days.pick(rng), recorders=recorders[organisation]
            )
        )

    def age(case: CaseSpec) -> int:
        return (end - case.reported_on).days

    returnable = [case for case in counted if age(case) >= 60]
    returned = set(_weighted_sample(rng, returnable, lambda case: float(age(case)), DEMO_REPATRIATED))
    final: dict[CaseSpec, str] = {}
    for case in counted:
        if case in returned:
            final[case] = REUNIFIED if rng.random() < 0.35 else REPATRIATED
        else:
            final[case] = _final_status_by_age(rng, age(case))

    twists: dict[CaseSpec, str] = {}

    def choose(candidates: list[CaseSpec], k: int, twist: str) -> None:
        free = [case for case in candidates if case not in twists]
        for case in rng.sample(free, k):
            twists[case] = twist

    a_returned = [case for case in counted if case in returned and case.organisation_id == ngo_a]
    a_open = [case for case in counted if case not in returned and case.organisation_id == ngo_a]
    choose(a_returned, 25, FALSE_RETURN)
    choose([case for case in a_returned if final[case] == REPATRIATED], 15, REUNIFICATION_CORRECTED)
    choose([case for case in a_open if final[case] in {LOCATED, RETURN_REQUESTED}], 90, FALSE_RETURN)
    choose(a_open, 150, VERIFICATION_CORRECTED)
    choose(a_open, 24, REOPENED_DUPLICATE)
    choose(a_open, 18, REOPENED_WITHDRAWAL)

    # Surviving cases named by duplicates are never duplicates themselves.
    survivors = [case for case in counted if case.organisation_id == ngo_a and twists.get(case) != REOPENED_DUPLICATE]

    def survivor_for(case: CaseSpec) -> CaseSpec:
        for _attempt in range(20):
            survivor = rng.choice(survivors)
            if survivor is not case and survivor.reported_on <= case.reported_on:
                return survivor
        return next(s for s in survivors if s is not case)

    for case in counted:
        twist = twists.get(case, PLAIN)
        generator.history(
            case,
            final=final[case],
            end=end,
            recorders=recorders[case.organisation_id],
            twist=twist,
            survivor=survivor_for(case) if twist == REOPENED_DUPLICATE else None,
        )

    # Cases that are not counted: duplicates of a surviving case, and withdrawn reports.
    extra = []
    for _index in range(DEMO_DUPLICATES):
        survivor = rng.choice(survivors)
        latest = min(survivor.reported_on + dt.timedelta(days=365), end - dt.timedelta(days=1))
        reported_on = survivor.reported_on + dt.timedelta(days=rng.randint(0, (latest - survivor.reported_on).days))
        case = generator.case(organisation_id=ngo_a, reported_on=reported_on, recorders=recorders[ngo_a])
        # The same child reported again: the same description.
        case.sex, case.birth_year, case.oblast = survivor.sex, survivor.birth_year, survivor.oblast
        generator.history(case, final=DUPLICATE, end=end, recorders=recorders[ngo_a], survivor=survivor)
        extra.append(case)
    for _index in range(DEMO_WITHDRAWN):
        case = generator.case(organisation_id=ngo_a, reported_on=report_days.pick(rng), recorders=recorders[ngo_a])
        generator.history(case, final=WITHDRAWN, end=end, recorders=recorders[ngo_a])
        extra.append(case)

    cases = counted + extra
    reported, repatriated = demo_figures(cases)
    if (reported, repatriated) != (DEMO_REPORTED, DEMO_REPATRIATED):
        raise RuntimeError(f"The demo plan gives {reported} reported and {repatriated} repatriated")
    # Cases enter the register in the order they were reported.
    cases.sort(key=lambda case: case.created_at)
    return cases


def _demo_recorders(ngos: Mapping[str, Organisation], users: Mapping[str, User]) -> dict[int, Recorders]:
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    return {
        ngo_a: Recorders(
            forward=(users["caseworker"].pk,) * 4 + (users["supervisor"].pk,),
            supervisors=(users["supervisor"].pk,),
            assignees=(users["caseworker"].pk,),
        ),
        # NGO B has no supervisor: its histories only move forward.
        ngo_b: Recorders(forward=(users["caseworker-b"].pk,), assignees=(users["caseworker-b"].pk,)),
    }


# After DEMO_AS_OF the register goes on, so that its pages look like a live register's
# on the day the demo is loaded: new reports, and open cases moving on (recent moves
# more often than old ones). Everything is dated after DEMO_AS_OF, so the figures as
# of that day stay exactly DEMO_REPORTED and DEMO_REPATRIATED.
DEMO_NEW_CASES_PER_MONTH = 110
DEMO_SHARE_MOVING_ON = 0.6  # of the cases open on DEMO_AS_OF
DEMO_MEAN_DAYS_SINCE_MOVE = 110
DEMO_RETURN_SHARE = 0.12  # of the moving cases, the ones that come home


def continue_demo(
    rng: random.Random,
    cases: Sequence[CaseSpec],
    *,
    today: dt.date,
    ngos: Mapping[str, Organisation],
    users: Mapping[str, User],
    vias: Mapping[str, Organisation],
    institutions: Sequence[Institution],
) -> list[CaseSpec]:
    """Move the demo's open cases on and add new reports from the day after DEMO_AS_OF up to yesterday.

    ``cases`` gain their later moves in place; the new cases are returned.
    """
    first, last = DEMO_AS_OF + dt.timedelta(days=1), today - dt.timedelta(days=1)
    if last < first:
        return []
    generator = _Generator(rng, today=today, vias=vias, institutions=institutions, check=True)
    recorders = _demo_recorders(ngos, users)
    span = (last - first).days

    def recent_day(earliest: dt.date) -> dt.date | None:
        """A day after ``earliest``, more often recent than not (work on a case comes in bursts)."""
        if earliest > last:
            return None
        back = min(int(rng.expovariate(1 / DEMO_MEAN_DAYS_SINCE_MOVE)), (last - earliest).days)
        return last - dt.timedelta(days=back)

    for case in cases:
        status = case.status
        if status in _SIDE or status == REUNIFIED or rng.random() >= DEMO_SHARE_MOVING_ON:
            continue
        at = _PATH.index(status)
        if status == REPATRIATED:
            target = _PATH.index(REUNIFIED)
        elif rng.random() < DEMO_RETURN_SHARE:
            target = _REPATRIATED_AT
        else:
            target = min(at + rng.choice((1, 1, 2)), _REPATRIATED_AT - 1)
        if target <= at:
            continue
        steps = generator._forward(at, target)
        earliest = max(first, case.changes[-1].occurred_on if case.changes else case.reported_on)
        days = sorted(day for day in (recent_day(earliest) for _step in steps) if day is not None)
        if len(days) != len(steps):
            continue
        returned = status in _RETURNED
        for step, day in zip(steps, days, strict=True):
            step.occurred_on = day
            if (step.to in _RETURNED and not returned) or (step.to == RETURN_REQUESTED and rng.random() < 0.5):
                step.via_slug = generator._pick_return_via(day)
            returned = returned or step.to in _RETURNED
        generator.record(case, steps, recorders=recorders[case.organisation_id])

    added = []
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    for _index in range(int(span / 30.4 * DEMO_NEW_CASES_PER_MONTH)):
        organisation = ngo_b if rng.random() < DEMO_NGO_B_CASES / DEMO_REPORTED else ngo_a
        reported_on = first + dt.timedelta(days=int(rng.random() * (span + 1)))
        case = generator.case(organisation_id=organisation, reported_on=reported_on, recorders=recorders[organisation])
        age = (last - reported_on).days
        final = REPATRIATED if age >= 60 and rng.random() < 0.04 else _final_status_by_age(rng, age)
        generator.history(case, final=final, end=last, recorders=recorders[organisation])
        added.append(case)
    return added


def demo_figures(cases: Iterable[CaseSpec]) -> tuple[int, int]:
    """Reported and repatriated on DEMO_AS_OF, when nothing in ``cases`` is dated later."""
    reported = repatriated = 0
    for case in cases:
        if case.status in _SIDE:
            continue
        reported += 1
        repatriated += case.status in _RETURNED
    return reported, repatriated


def seed_demo(*, password: str | None = None, today: dt.date | None = None) -> DemoResult:
    """Create the demo organisations, institutions, users and cases, unless they exist.

    The cases' histories reach DEMO_AS_OF with exactly the demo's figures, and go
    on after it up to the day before ``today``. When the data exists, nothing is
    added and the demo users keep their passwords, unless ``password`` is given.
    """
    started = time.perf_counter()
    today = today or timezone.localdate()
    existing = demo_case_count()
    created = existing == 0
    generated = password is None and created
    if generated:
        password = secrets.token_urlsafe(18)
    warnings: list[str] = []
    if password is not None and not generated:
        try:
            validate_password(password)
        except ValidationError as exc:
            warnings = list(exc.messages)
    changes = cases = 0
    with transaction.atomic():
        ngos, vias = _ensure_organisations()
        institutions = _ensure_institutions()
        users = _ensure_users(ngos, password)
        if created:
            rng = random.Random(DEMO_SEED)  # noqa: S311 (reproducible synthetic data, no secret)
            specs = build_demo_cases(rng, ngos=ngos, users=users, vias=vias, institutions=institutions)
            specs += continue_demo(
                rng, specs, today=today, ngos=ngos, users=users, vias=vias, institutions=institutions
            )
            specs.sort(key=lambda case: case.created_at)
            references = new_references(len(specs), taken=_taken_references)
            changes = _write_with_orm(specs, references, vias, changes_in_recording_order=True)
            cases = len(specs)
    return DemoResult(
        logins=[
            Login(username=username, role=role, organisation=organisation, is_superuser=is_superuser)
            for username, role, organisation, is_superuser in DEMO_USERS
        ],
        password=password,
        password_generated=generated,
        password_warnings=warnings,
        created=created,
        cases=cases,
        existing_cases=existing,
        changes=changes,
        reported=DEMO_REPORTED,
        repatriated=DEMO_REPATRIATED,
        seconds=time.perf_counter() - started,
    )


# --- generate_cases ----------------------------------------------------------

GENERATE_END = dt.date(2025, 12, 31)
GENERATE_CHUNK = 10_000
# Final statuses of generated cases, weighted so that a case has about 3.5 changes.
_GENERATED_FINALS = _Weighted(
    [
        (REPORTED, 2),
        (VERIFIED, 4),
        (LOCATED, 8),
        (RETURN_REQUESTED, 16),
        (REPATRIATED, 28),
        (REUNIFIED, 33),
        (DUPLICATE, 4),
        (WITHDRAWN, 4),
    ]
)
_GENERATED_TWISTS = _Weighted(
    [
        (PLAIN, 92),
        (VERIFICATION_CORRECTED, 2.5),
        (FALSE_RETURN, 3),
        (REOPENED_DUPLICATE, 1),
        (REOPENED_WITHDRAWAL, 1),
        (REUNIFICATION_CORRECTED, 0.5),
    ]
)


@dataclass
class GenerateResult:
    organisation: Organisation
    organisation_created: bool
    cases: int
    changes: int
    seed: int
    seconds: float
    method: str


def _recorders_for(organisation: Organisation) -> Recorders:
    staff = list(
        User.objects.filter(organisation=organisation, is_active=True, role__in=[Role.CASEWORKER, Role.SUPERVISOR])
        .order_by("pk")
        .values_list("pk", "role")[:50]
    )
    caseworkers = tuple(pk for pk, role in staff if role == Role.CASEWORKER)
    supervisors = tuple(pk for pk, role in staff if role == Role.SUPERVISOR)
    return Recorders(forward=caseworkers + supervisors, supervisors=supervisors, assignees=caseworkers)


def _generated_chunk(
    generator: _Generator,
    *,
    count: int,
    organisation_id: int,
    recorders: Recorders,
    report_days: _Weighted[dt.date],
    end: dt.date,
) -> list[CaseSpec]:
    rng = generator.rng
    specs: list[CaseSpec] = []
    survivors: list[CaseSpec] = []
    for _index in range(count):
        case = generator.case(organisation_id=organisation_id, reported_on=report_days.pick(rng), recorders=recorders)
        final = _GENERATED_FINALS.pick(rng)
        twist = _GENERATED_TWISTS.pick(rng)
        target = _PATH.index(final) if final not in _SIDE else -1
        if (
            final in _SIDE
            or (twist == FALSE_RETURN and target < _LOCATED_AT)
            or (twist == REUNIFICATION_CORRECTED and final != REPATRIATED)
        ):
            twist = PLAIN
        survivor = rng.choice(survivors) if survivors and (twist == REOPENED_DUPLICATE or final == DUPLICATE) else None
        if survivor is None and twist == REOPENED_DUPLICATE:
            twist = PLAIN
        if survivor is None and final == DUPLICATE:
            final = WITHDRAWN
        generator.history(case, final=final, end=end, recorders=recorders, twist=twist, survivor=survivor)
        if final not in _SIDE and twist != REOPENED_DUPLICATE and len(survivors) < 1000:
            survivors.append(case)
        specs.append(case)
    return specs


def generate_cases(
    *,
    cases: int,
    organisation_slug: str,
    seed: int | None = None,
    check: bool = False,
    progress: Callable[[int], object] | None = None,
    chunk_size: int = GENERATE_CHUNK,
) -> GenerateResult:
    """Add ``cases`` synthetic cases with histories to an organisation (created if missing), in one transaction.

    On PostgreSQL, rows are streamed with COPY from a worker thread while the
    next chunk is generated; elsewhere they are written with bulk_create.
    Histories are built by the same generator as the demo's, whose every move
    is checked; ``check`` runs this run's moves through ``check_move`` too,
    at about twice the cost.
    """
    started = time.perf_counter()
    if seed is None:
        seed = secrets.randbits(32)
    rng = random.Random(seed)  # noqa: S311 (reproducible synthetic data, no secret)
    today = timezone.localdate()
    end = min(GENERATE_END, today)
    report_days = _report_days(FIRST_REPORT, max(FIRST_REPORT, end - dt.timedelta(days=30)))
    use_copy = connection.vendor == "postgresql"
    written_changes = 0
    with transaction.atomic():
        organisation, created = Organisation.objects.get_or_create(
            slug=organisation_slug,
            defaults={"name": f"{organisation_slug} (synthetic data)", "kind": Organisation.Kind.NGO},
        )
        vias = {
            o.slug: o
            for o in Organisation.objects.filter(
                kind=Organisation.Kind.INTERMEDIARY, slug__in=[slug for slug, _name, _name_uk in INTERMEDIARIES]
            )
        }
        generator = _Generator(
            rng, today=today, vias=vias, institutions=list(Institution.objects.all()[:1000]), check=check, skip=0.1
        )
        recorders = _recorders_for(organisation)

        def chunks() -> Iterator[list[CaseSpec]]:
            for start in range(0, cases, chunk_size):
                yield _generated_chunk(
                    generator,
                    count=min(chunk_size, cases - start),
                    organisation_id=organisation.pk,
                    recorders=recorders,
                    report_days=report_days,
                    end=end,
                )

        if use_copy:
            pg = cast("psycopg.Connection[Any]", connection.cursor().connection)
            with pg.cursor() as pg_cursor:
                formatter = _CopyFormatter(_reserve_ids(pg_cursor, Case, cases), vias)
                # Foreign keys are checked as each COPY ends, while the next chunk is
                # generated, rather than all at once at commit, when nothing else runs.
                foreign_keys = _deferred_foreign_keys(pg_cursor, [Case, StatusChange])
                _set_constraints(pg_cursor, foreign_keys, "IMMEDIATE")
            with _CopyStream(pg) as stream:
                for specs in chunks():
                    # The worker swaps any reference already taken for a fresh one.
                    stream.send(formatter.chunk(specs, list(_random_references_exactly(len(specs)))))
                    written_changes += sum(len(spec.changes) for spec in specs)
                    if progress is not None:
                        progress(len(specs))
            with pg.cursor() as pg_cursor:
                _set_constraints(pg_cursor, foreign_keys, "DEFERRED")
            with connection.cursor() as cursor:
                # Fresh statistics, so the next queries are planned for the tables' new size.
                cursor.execute(f"ANALYZE {Case._meta.db_table}, {StatusChange._meta.db_table}")
        else:
            for specs in chunks():
                # Earlier chunks are already in the table, so the check covers them too.
                written_changes += _write_with_orm(specs, fresh_references(len(specs)), vias)
                if progress is not None:
                    progress(len(specs))
    return GenerateResult(
        organisation=organisation,
        organisation_created=created,
        cases=cases,
        changes=written_changes,
        seed=seed,
        seconds=time.perf_counter() - started,
        method="COPY" if use_copy else "bulk_create",
    )
