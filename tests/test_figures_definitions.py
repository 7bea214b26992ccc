"""The figures of DESIGN.md section 4 on hand-built histories, and against a literal reading of the definitions.

``reference_figures`` below reads section 4 word for word, one case at a
time, in Python; ``reports.figures`` computes the same in SQL. The hand-built
histories pin down the tricky cases with numbers worked out by hand; the
property test compares both on random histories written through the service.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import statistics
from collections import defaultdict
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import Organisation, Role, User
from casework import services
from casework.models import RETURNED_STATUSES, SIDE_STATUSES, Case, Oblast, Status, StatusChange
from reports.figures import (
    AGE_BANDS,
    FiguresInconsistent,
    compute_figures,
    compute_figures_by_organisation,
    consistent_read,
)
from tests.conftest import ensure_intermediaries
from tests.factories import CaseFactory, OrganisationFactory, UserFactory

D = dt.date

# --- the definitions, read literally -------------------------------------------


def _status_on(changes: list[StatusChange], day: dt.date) -> str:
    """The `to` status of the last change on or before ``day``, ties in recording order; reported if none."""
    before = [change for change in changes if change.occurred_on <= day]
    before.sort(key=lambda change: (change.occurred_on, change.pk))
    return before[-1].to_status if before else Status.REPORTED


def _return_event(changes: list[StatusChange], day: dt.date) -> StatusChange | None:
    """The last change on or before ``day`` that moved the case from outside {repatriated, reunified} into it."""
    before = sorted((c for c in changes if c.occurred_on <= day), key=lambda change: (change.occurred_on, change.pk))
    event = None
    previous: str = Status.REPORTED
    for change in before:
        if previous not in RETURNED_STATUSES and change.to_status in RETURNED_STATUSES:
            event = change
        previous = change.to_status
    return event


def _age_band(case: Case) -> str:
    if case.birth_year is None:
        return "unknown"
    age = case.reported_on.year - case.birth_year
    if age < 5:
        return "0-4"
    if age < 10:
        return "5-9"
    if age < 14:
        return "10-13"
    if age < 18:
        return "14-17"
    return "18+"


def _counts(cases: list[Case], histories: dict[int, list[StatusChange]], day: dt.date) -> tuple[int, int]:
    reported = repatriated = 0
    for case in cases:
        if case.reported_on > day:
            continue
        status = _status_on(histories[case.pk], day)
        if status in SIDE_STATUSES:
            continue
        reported += 1
        repatriated += status in RETURNED_STATUSES
    return reported, repatriated


def _children(cases: list[Case], organisation: Organisation | None) -> list[list[Case]]:
    """Section 4, "Children, not records": register-wide, the cases confirmed as the same child (the pairs whose
    latest decision is "same child", joined) are one child; an organisation's own figures count its cases."""
    if organisation is not None:
        return [[case] for case in cases]
    from linkage.models import LinkDecision

    latest: dict[tuple[int, int], str] = {}  # the latest decision on each pair, in the order recorded
    for decision in LinkDecision.objects.order_by("decided_at", "id"):
        latest[decision.case_a_id, decision.case_b_id] = decision.decision
    child_of = {case.pk: {case.pk} for case in cases}
    for (a, b), decision in latest.items():
        if decision != "same":
            continue
        joined = child_of[a] | child_of[b]
        for member in joined:
            child_of[member] = joined
    by_pk = {case.pk: case for case in cases}
    seen: set[frozenset[int]] = set()
    children = []
    for members in child_of.values():
        key = frozenset(members)
        if key not in seen:
            seen.add(key)
            children.append(sorted((by_pk[pk] for pk in members), key=lambda case: case.pk))
    return children


def _child_counts(child: list[Case], histories: dict[int, list[StatusChange]], day: dt.date) -> tuple[bool, bool]:
    """A child is in reported(D) if any of its cases is, in repatriated(D) if any of its cases is."""
    reported, repatriated = _counts(child, histories, day)
    return reported > 0, repatriated > 0


def reference_figures(*, as_of: dt.date, organisation: Organisation | None = None) -> dict[str, Any]:
    cases = list(Case.objects.all() if organisation is None else Case.objects.filter(organisation=organisation))
    histories: dict[int, list[StatusChange]] = defaultdict(list)
    for change in StatusChange.objects.filter(case__in=cases).select_related("via"):
        histories[change.case_id].append(change)
    zero = {"reported": 0, "repatriated": 0}
    by_oblast: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    by_sex = {key: dict(zero) for key in ("F", "M", "U")}
    by_band = {key: dict(zero) for key in AGE_BANDS}
    by_via: dict[str, int] = defaultdict(int)
    days: list[int] = []
    children = _children(cases, organisation)
    for child in children:
        existing = [case for case in child if case.reported_on <= as_of]
        if not existing:
            continue
        reported_child, repatriated_child = _child_counts(child, histories, as_of)
        if not reported_child:
            continue
        # Its oblast, sex and age band: those of its earliest reported case (ties: the lowest id).
        case = min(existing, key=lambda one: (one.reported_on, one.pk))
        for cells, key in ((by_oblast, case.oblast), (by_sex, case.sex), (by_band, _age_band(case))):
            cells[key]["reported"] += 1
        if repatriated_child:
            for cells, key in ((by_oblast, case.oblast), (by_sex, case.sex), (by_band, _age_band(case))):
                cells[key]["repatriated"] += 1
            # Its return event: the earliest among its cases in repatriated(D).
            events = []
            for member in existing:
                if _counts([member], histories, as_of)[1]:
                    event = _return_event(histories[member.pk], as_of)
                    assert event is not None
                    events.append((event.occurred_on, event.pk, event, member))
            _day, _pk, event, member = min(events, key=lambda found: found[:2])
            by_via[event.via.slug if event.via else "unattributed"] += 1
            days.append((event.occurred_on - member.reported_on).days)
    reported = sum(_child_counts(child, histories, as_of)[0] for child in children)
    repatriated = sum(_child_counts(child, histories, as_of)[1] for child in children)
    records_reported, records_repatriated = _counts(cases, histories, as_of)
    existing = [case.reported_on for case in cases if case.reported_on <= as_of]
    monthly = []
    if existing:
        year, month = min(existing).year, min(existing).month
        while (year, month) <= (as_of.year, as_of.month):
            end = D(year, month, calendar.monthrange(year, month)[1])
            counted = [_child_counts(child, histories, min(end, as_of)) for child in children]
            monthly.append(
                {
                    "month": f"{year:04d}-{month:02d}",
                    "reported": sum(r for r, _p in counted),
                    "repatriated": sum(p for _r, p in counted),
                }
            )
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    intermediaries = set(Organisation.objects.filter(kind="intermediary").values_list("slug", flat=True))
    return {
        "as_of": as_of.isoformat(),
        "published": False,
        "min_cell": None,
        "totals": {"reported": reported, "repatriated": repatriated, "outstanding": reported - repatriated},
        "records": {"reported": records_reported, "repatriated": records_repatriated},
        "by_oblast": {key: by_oblast[key] for key in Oblast.values if key in by_oblast},
        "by_sex": by_sex,
        "by_age_band": by_band,
        "by_via": {
            key: by_via.get(key, 0)
            for key in [*sorted(intermediaries | set(by_via) - {"unattributed"}), "unattributed"]
        },
        "monthly": monthly,
        "median_days_to_return": float(statistics.median(days)) if days else None,
    }


# --- hand-built histories -------------------------------------------------------

NOTE = "Correction: the earlier record was wrong."


@pytest.fixture
def admin_user(ngo_a):
    return UserFactory(username="figures-admin", organisation=ngo_a, role=Role.SUPERVISOR, is_superuser=True)


@pytest.fixture
def make_case(ngo_a, admin_user):
    """A case with a history written through the service: moves are (to_status, date[, via slug[, survivor]])."""
    vias = {organisation.slug: organisation for organisation in Organisation.objects.filter(kind="intermediary")}

    def make(*moves, reported_on=None, organisation=None, **fields):
        case = CaseFactory(organisation=organisation or ngo_a, reported_on=reported_on or D(2023, 1, 10), **fields)
        for to_status, day, *rest in moves:
            via = vias[rest[0]] if rest and rest[0] else None
            survivor = rest[1] if len(rest) > 1 else None
            services.change_status(
                case=case,
                actor=services.Actor.for_user(admin_user),
                to_status=to_status,
                occurred_on=day,
                expected_version=case.version,
                via=via,
                note=NOTE,
                duplicate_of=survivor,
            )
        return case

    return make


def figures(as_of, **kwargs):
    result = compute_figures(as_of=as_of, **kwargs)
    assert result == reference_figures(as_of=as_of, organisation=None), "SQL and the literal reading disagree"
    return result


def test_it_counts_same_day_changes_in_recording_order(make_case):
    make_case(("verified", D(2024, 3, 5)), ("repatriated", D(2024, 3, 5), "qatar"), reported_on=D(2024, 3, 1))
    make_case(("withdrawn", D(2024, 3, 5)), ("verified", D(2024, 3, 5)), reported_on=D(2024, 3, 1))
    make_case(("repatriated", D(2024, 3, 5)), ("located", D(2024, 3, 5)), reported_on=D(2024, 3, 1))

    on_the_day = figures(D(2024, 3, 5))
    assert on_the_day["totals"] == {"reported": 3, "repatriated": 1, "outstanding": 2}
    assert on_the_day["by_via"]["qatar"] == 1
    assert on_the_day["median_days_to_return"] == 4.0
    assert figures(D(2024, 3, 4))["totals"] == {"reported": 3, "repatriated": 0, "outstanding": 3}


def test_it_credits_the_last_return_after_a_correction_and_not_a_reunification(make_case):
    make_case(
        ("repatriated", D(2023, 3, 1), "qatar"),
        ("located", D(2023, 4, 1)),  # the return was a mistake: a correction
        ("repatriated", D(2023, 6, 1), "vatican"),
        ("reunified", D(2023, 7, 1), "south-africa"),  # not a new return
    )
    first = figures(D(2023, 3, 15))
    assert first["totals"]["repatriated"] == 1
    assert first["by_via"]["qatar"] == 1
    assert first["median_days_to_return"] == 50.0
    assert figures(D(2023, 5, 1))["totals"]["repatriated"] == 0
    later = figures(D(2023, 8, 1))
    assert later["by_via"] == {"icrc": 0, "qatar": 0, "south-africa": 0, "vatican": 1, "unattributed": 0}
    assert later["median_days_to_return"] == 142.0  # 2023-06-01 minus 2023-01-10


def test_it_counts_reopened_duplicates_and_withdrawals_again(make_case):
    survivor = make_case(reported_on=D(2023, 1, 1))
    make_case(("duplicate", D(2023, 3, 1), None, survivor), ("verified", D(2023, 5, 1)), reported_on=D(2023, 2, 1))
    make_case(("withdrawn", D(2023, 3, 1)), ("reported", D(2023, 5, 1)), reported_on=D(2023, 2, 1))

    assert figures(D(2023, 4, 1))["totals"]["reported"] == 1
    result = figures(D(2023, 6, 1))
    assert result["totals"]["reported"] == 3
    assert [(m["month"], m["reported"]) for m in result["monthly"]] == [
        ("2023-01", 1),
        ("2023-02", 3),
        ("2023-03", 1),
        ("2023-04", 1),
        ("2023-05", 3),
        ("2023-06", 3),
    ]


def test_it_follows_skipped_steps_and_returns_through_no_intermediary(make_case):
    make_case(("repatriated", D(2023, 2, 1)))
    make_case(("located", D(2023, 2, 1)), ("repatriated", D(2023, 3, 1), "qatar"))
    result = figures(D(2023, 12, 31))
    assert result["totals"]["repatriated"] == 2
    assert result["by_via"]["unattributed"] == 1
    assert result["by_via"]["qatar"] == 1


def test_it_ignores_changes_and_cases_after_the_date(make_case):
    make_case(("repatriated", D(2023, 6, 1), "qatar"), reported_on=D(2023, 1, 10))
    make_case(reported_on=D(2023, 6, 15))
    result = figures(D(2023, 5, 31))
    assert result["totals"] == {"reported": 1, "repatriated": 0, "outstanding": 1}
    assert result["by_via"]["qatar"] == 0
    assert result["median_days_to_return"] is None
    assert result["monthly"][0]["month"] == "2023-01"
    assert result["monthly"][-1] == {"month": "2023-05", "reported": 1, "repatriated": 0}


def test_it_starts_the_series_at_the_earliest_report_whatever_its_status(make_case):
    survivor = make_case(reported_on=D(2023, 3, 1))
    make_case(("withdrawn", D(2023, 2, 1)), reported_on=D(2022, 11, 5))
    make_case(("duplicate", D(2023, 4, 1), None, survivor), reported_on=D(2023, 3, 2))
    result = figures(D(2023, 4, 30))
    assert result["monthly"][0] == {"month": "2022-11", "reported": 1, "repatriated": 0}
    assert result["monthly"][3] == {"month": "2023-02", "reported": 0, "repatriated": 0}
    assert result["totals"]["reported"] == 1


def test_it_puts_ages_in_bands_and_unknown_birth_years_apart(make_case):
    for birth_year in (None, 2020, 2019, 2015, 2011, 2010, 2007, 2006, 1995):
        make_case(reported_on=D(2024, 6, 1), birth_year=birth_year)
    bands = {key: cell["reported"] for key, cell in figures(D(2024, 6, 30))["by_age_band"].items()}
    assert bands == {"0-4": 1, "5-9": 2, "10-13": 1, "14-17": 2, "18+": 2, "unknown": 1}


def test_it_crosses_year_ends_in_the_monthly_series(make_case):
    make_case(("repatriated", D(2023, 12, 31), "qatar"), reported_on=D(2023, 11, 20))
    make_case(("withdrawn", D(2024, 1, 15)), reported_on=D(2023, 12, 31))
    make_case(("repatriated", D(2024, 2, 6)), reported_on=D(2024, 1, 1))
    make_case(reported_on=D(2024, 2, 10))
    result = figures(D(2024, 2, 5))
    assert result["monthly"] == [
        {"month": "2023-11", "reported": 1, "repatriated": 0},
        {"month": "2023-12", "reported": 2, "repatriated": 1},
        {"month": "2024-01", "reported": 2, "repatriated": 1},
        {"month": "2024-02", "reported": 2, "repatriated": 1},
    ]


def test_it_takes_the_mean_of_the_middle_two_for_an_even_count(make_case):
    reported_on = D(2023, 1, 1)
    for days in (10, 20, 30, 50):
        make_case(("repatriated", reported_on + dt.timedelta(days=days)), reported_on=reported_on)
    assert figures(D(2023, 12, 31))["median_days_to_return"] == 25.0
    make_case(("repatriated", reported_on + dt.timedelta(days=60)), reported_on=reported_on)
    assert figures(D(2023, 12, 31))["median_days_to_return"] == 30.0


def test_it_keeps_the_json_form_of_section_4(make_case):
    make_case(("repatriated", D(2023, 3, 1), "qatar"), oblast="UA-65", sex="M")
    result = figures(D(2023, 3, 31))
    assert list(result) == [
        "as_of",
        "published",
        "min_cell",
        "totals",
        "records",
        "by_oblast",
        "by_sex",
        "by_age_band",
        "by_via",
        "monthly",
        "median_days_to_return",
    ]
    assert result["as_of"] == "2023-03-31" and result["published"] is False and result["min_cell"] is None
    assert result["by_oblast"] == {"UA-65": {"reported": 1, "repatriated": 1}}
    assert list(result["by_via"])[-1] == "unattributed"


def test_it_splits_by_organisation_in_the_same_pass(make_case, ngo_b):
    make_case(("repatriated", D(2023, 3, 1), "qatar"))
    make_case()
    make_case(("repatriated", D(2023, 5, 1)), organisation=ngo_b)
    everyone, by_organisation = compute_figures_by_organisation(as_of=D(2023, 12, 31))
    own = compute_figures(as_of=D(2023, 12, 31), organisation_id=ngo_b.pk)
    assert everyone == reference_figures(as_of=D(2023, 12, 31))
    assert own == reference_figures(as_of=D(2023, 12, 31), organisation=ngo_b)
    assert by_organisation[ngo_b.pk] == own
    assert everyone["totals"] == {"reported": 3, "repatriated": 2, "outstanding": 1}
    assert own["totals"] == {"reported": 1, "repatriated": 1, "outstanding": 0}


def test_it_runs_the_same_queries_for_many_cases_as_for_one(make_case, django_assert_num_queries):
    make_case(("repatriated", D(2023, 3, 1), "qatar"))
    # 1: the figures, in one statement; 2: the confirmed links that make children (none here); 3: the
    # intermediaries' slugs.
    with django_assert_num_queries(3):
        compute_figures(as_of=D(2023, 12, 31))
    for index in range(25):
        make_case(("verified", D(2023, 2, 1)), ("repatriated", D(2023, 4, 1) + dt.timedelta(days=index)))
    with django_assert_num_queries(3):
        compute_figures(as_of=D(2023, 12, 31))


def test_it_refuses_a_history_that_is_not_a_chain(case):
    # Only a direct insert can do this (the service always records the status before the move).
    StatusChange.objects.create(
        case=case,
        from_status=Status.REPATRIATED,
        to_status=Status.LOCATED,
        occurred_on=D(2023, 2, 1),
        recorded_at=timezone.now(),
        version=2,
    )
    with pytest.raises(FiguresInconsistent, match="not a chain"):
        compute_figures(as_of=D(2023, 12, 31))


def test_it_reads_consistently_inside_or_outside_a_transaction(make_case):
    make_case(("repatriated", D(2023, 3, 1), "qatar"))
    with consistent_read():
        inside = compute_figures(as_of=D(2023, 12, 31))
    assert inside == compute_figures(as_of=D(2023, 12, 31))


# --- random histories through the service -------------------------------------------

FIRST_DAY = D(2023, 11, 1)
histories = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=120),  # reported, days after FIRST_DAY
        st.sampled_from([None, 2008, 2012, 2019, 2022]),
        st.sampled_from(["F", "M", "U"]),
        st.sampled_from(["UA-14", "UA-43", "UA-65"]),
        st.lists(
            st.tuples(
                st.sampled_from(Status.values),
                st.integers(min_value=0, max_value=45),  # days after the previous move (0: the same day)
                st.sampled_from([None, "qatar", "vatican"]),
            ),
            max_size=6,
        ),
    ),
    min_size=1,
    max_size=8,
)


class FiguresMatchTheDefinitions(TestCase):
    organisation: Organisation
    admin: User
    vias: dict[str, Organisation]

    @classmethod
    def setUpTestData(cls) -> None:
        ensure_intermediaries()
        cls.organisation = OrganisationFactory(slug="ngo-figures-prop")
        cls.admin = UserFactory(
            username="figures-prop-admin", organisation=cls.organisation, role=Role.SUPERVISOR, is_superuser=True
        )
        cls.vias = {o.slug: o for o in Organisation.objects.filter(kind="intermediary")}

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        histories,
        st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=4),
        st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.sampled_from(["same", "same", "different"]))),
    )
    def test_it_computes_what_section_4_says(self, cases, as_of_offsets, links) -> None:
        from linkage import services as linkage_services

        actor = services.Actor.for_user(self.admin)
        survivor = None
        made: list[Case] = []
        for reported, birth_year, sex, oblast, moves in cases:
            case = CaseFactory(
                organisation=self.organisation,
                reported_on=FIRST_DAY + dt.timedelta(days=reported),
                birth_year=birth_year,
                sex=sex,
                oblast=oblast,
            )
            day = case.reported_on
            for to_status, step, via in moves:
                day = day + dt.timedelta(days=step)
                with contextlib.suppress(ValidationError, services.NotPermitted):
                    services.change_status(
                        case=case,
                        actor=actor,
                        to_status=to_status,
                        occurred_on=day,
                        expected_version=case.version,
                        via=self.vias[via]
                        if via and to_status in ("return_requested", "repatriated", "reunified")
                        else None,
                        note=NOTE,
                        duplicate_of=survivor,
                    )
            if survivor is None and case.status not in SIDE_STATUSES:
                survivor = case
            made.append(case)
        # Cases confirmed as the same child (or decided different): children, not records.
        for first, second, decision in links:
            one, other = made[first % len(made)], made[second % len(made)]
            with contextlib.suppress(ValidationError):  # the same case twice, or the same decision again
                linkage_services.decide_by_command(case_a=one, case_b=other, decision=decision)
        for offset in as_of_offsets:
            as_of = FIRST_DAY + dt.timedelta(days=offset)
            assert compute_figures(as_of=as_of) == reference_figures(as_of=as_of)
