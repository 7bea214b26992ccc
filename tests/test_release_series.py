"""The series a release protects (reports.figures.compute_release_series), against a literal reading.

Every child in reported(D) is counted once, in the month of its report; every
child in repatriated(D) once, in the month of its return event and by its days
to return: so that one child is in at most one cell of each series.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
from casework.models import RETURNED_STATUSES, SIDE_STATUSES, Case, Status, StatusChange
from reports.figures import FiguresInconsistent, compute_figures, compute_release_series, consistent_read
from tests.conftest import ensure_intermediaries
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.test_figures_definitions import FIRST_DAY, NOTE, _return_event, _status_on, histories

D = dt.date


def reference_series(as_of: dt.date) -> dict[str, Any]:
    histories_by_case: dict[int, list[StatusChange]] = defaultdict(list)
    for change in StatusChange.objects.all():
        histories_by_case[change.case_id].append(change)
    reported: dict[str, int] = defaultdict(int)
    repatriated: dict[str, int] = defaultdict(int)
    days: dict[str, int] = defaultdict(int)
    for case in Case.objects.all():
        if case.reported_on > as_of:
            continue
        status = _status_on(histories_by_case[case.pk], as_of)
        if status in SIDE_STATUSES:
            continue
        reported[case.reported_on.strftime("%Y-%m")] += 1
        if status in RETURNED_STATUSES:
            event = _return_event(histories_by_case[case.pk], as_of)
            assert event is not None
            repatriated[event.occurred_on.strftime("%Y-%m")] += 1
            days[str((event.occurred_on - case.reported_on).days)] += 1
    return {
        "reported_by_month": dict(sorted(reported.items())),
        "repatriated_by_month": dict(sorted(repatriated.items())),
        "days_to_return": dict(sorted(days.items(), key=lambda item: int(item[0]))),
    }


@pytest.fixture
def make_case(ngo_a):
    admin = UserFactory(username="series-admin", organisation=ngo_a, role=Role.SUPERVISOR, is_superuser=True)
    vias = {organisation.slug: organisation for organisation in Organisation.objects.filter(kind="intermediary")}

    def make(*moves, reported_on):
        case = CaseFactory(organisation=ngo_a, reported_on=reported_on)
        for to_status, day, *via in moves:
            services.change_status(
                case=case,
                actor=services.Actor.for_user(admin),
                to_status=to_status,
                occurred_on=day,
                expected_version=case.version,
                via=vias[via[0]] if via else None,
                note=NOTE,
            )
        return case

    return make


def test_each_child_is_in_one_month_of_report_and_one_month_of_return(make_case):
    make_case(("repatriated", D(2024, 3, 5), "qatar"), reported_on=D(2024, 1, 20))
    make_case(("repatriated", D(2024, 2, 1)), ("located", D(2024, 4, 1)), reported_on=D(2024, 1, 31))
    make_case(("withdrawn", D(2024, 2, 5)), reported_on=D(2024, 2, 1))
    make_case(("withdrawn", D(2024, 2, 5)), ("verified", D(2024, 6, 1)), reported_on=D(2024, 2, 1))
    make_case(
        ("repatriated", D(2024, 2, 10)),
        ("located", D(2024, 3, 1)),
        ("reunified", D(2024, 5, 2)),
        reported_on=D(2024, 2, 2),
    )
    make_case(reported_on=D(2024, 7, 1))  # after the date
    with consistent_read():
        series = compute_release_series(as_of=D(2024, 6, 30), expected=compute_figures(as_of=D(2024, 6, 30)))
    assert series == {
        "reported_by_month": {"2024-01": 2, "2024-02": 2},
        "repatriated_by_month": {"2024-03": 1, "2024-05": 1},
        "days_to_return": {"45": 1, "90": 1},
    }
    assert series == reference_series(D(2024, 6, 30))
    # Before the withdrawn case came back, and before the second return.
    assert compute_release_series(as_of=D(2024, 4, 30)) == {
        "reported_by_month": {"2024-01": 2, "2024-02": 1},
        "repatriated_by_month": {"2024-03": 1},
        "days_to_return": {"45": 1},
    }


def test_it_costs_two_queries_whatever_the_number_of_cases(make_case, django_assert_num_queries):
    for day in range(1, 20):
        make_case(("repatriated", D(2024, 3, day), "qatar"), reported_on=D(2024, 1, day))
    # The statement, and the confirmed links (none here) that make children of cases.
    with django_assert_num_queries(2):
        compute_release_series(as_of=D(2024, 12, 31))


def test_it_refuses_series_that_do_not_add_up_to_the_figures(make_case):
    make_case(("repatriated", D(2024, 3, 5), "qatar"), reported_on=D(2024, 1, 20))
    figures = compute_figures(as_of=D(2024, 12, 31))
    figures["totals"]["repatriated"] += 1
    with pytest.raises(FiguresInconsistent):
        compute_release_series(as_of=D(2024, 12, 31), expected=figures)


def test_it_refuses_a_history_that_is_not_a_chain(case):
    # Only a direct insert can do this (the service records the status before each move): withdrawn twice.
    for version in (2, 3):
        StatusChange.objects.create(
            case=case,
            from_status=Status.REPORTED,
            to_status=Status.WITHDRAWN,
            occurred_on=D(2023, 2, 1),
            recorded_at=timezone.now(),
            version=version,
        )
    with consistent_read(), pytest.raises(FiguresInconsistent, match="do not add up"):
        compute_release_series(as_of=D(2023, 12, 31), expected=compute_figures(as_of=D(2023, 12, 31)))


class ReleaseSeriesMatchTheDefinitions(TestCase):
    organisation: Organisation
    admin: User
    vias: dict[str, Organisation]

    @classmethod
    def setUpTestData(cls) -> None:
        ensure_intermediaries()
        cls.organisation = OrganisationFactory(slug="ngo-series-prop")
        cls.admin = UserFactory(
            username="series-prop-admin", organisation=cls.organisation, role=Role.SUPERVISOR, is_superuser=True
        )
        cls.vias = {o.slug: o for o in Organisation.objects.filter(kind="intermediary")}

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories, st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=4))
    def test_it_counts_what_the_definitions_say(self, cases, as_of_offsets) -> None:
        actor = services.Actor.for_user(self.admin)
        survivor = None
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
        for offset in as_of_offsets:
            as_of = FIRST_DAY + dt.timedelta(days=offset)
            with consistent_read():
                figures = compute_figures(as_of=as_of)
                assert compute_release_series(as_of=as_of, expected=figures) == reference_series(as_of)
