"""Property-based: random sequences of moves keep the case and its history consistent."""

from __future__ import annotations

import contextlib
import datetime as dt

from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import Organisation, Role
from casework import services
from casework.models import MAIN_PATH, Status, StatusChange
from tests.conftest import ensure_intermediaries
from tests.factories import CaseFactory, OrganisationFactory, UserFactory

REPORTED_ON = dt.date(2023, 1, 10)

moves = st.lists(
    st.tuples(
        st.sampled_from(Status.values),
        st.sampled_from([Role.CASEWORKER, Role.SUPERVISOR]),
        st.integers(min_value=-30, max_value=60),  # days after the previous attempt's date
        st.booleans(),  # give a note
        st.booleans(),  # name an intermediary
        st.booleans(),  # name a surviving case
    ),
    min_size=1,
    max_size=12,
)


class StatusMachineProperties(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.organisation = OrganisationFactory(slug="ngo-prop")
        cls.caseworker = UserFactory(username="prop-caseworker", organisation=cls.organisation, role=Role.CASEWORKER)
        cls.supervisor = UserFactory(username="prop-supervisor", organisation=cls.organisation, role=Role.SUPERVISOR)
        cls.survivor = CaseFactory(organisation=cls.organisation)
        ensure_intermediaries()
        cls.qatar = Organisation.objects.get(slug="qatar")

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(moves)
    def test_it_keeps_status_equal_to_the_last_history_row_and_never_breaks_a_rule(self, sequence) -> None:
        case = CaseFactory(organisation=self.organisation, reported_on=REPORTED_ON)
        day = REPORTED_ON
        for to, role, step, with_note, with_via, with_survivor in sequence:
            day = min(day + dt.timedelta(days=step), dt.date(2025, 1, 1))
            user = self.supervisor if role == Role.SUPERVISOR else self.caseworker
            with contextlib.suppress(ValidationError, services.NotPermitted):
                services.change_status(
                    case=case,
                    actor=services.Actor.for_user(user),
                    to_status=to,
                    occurred_on=day,
                    expected_version=case.version,
                    note="reason for this move" if with_note else "",
                    via=self.qatar if with_via else None,
                    duplicate_of=self.survivor if with_survivor else None,
                )
            case.refresh_from_db()
            history = list(StatusChange.objects.filter(case=case).order_by("id"))
            expected_status = history[-1].to_status if history else Status.REPORTED
            assert case.status == expected_status
            assert case.version == 1 + len(history)

        history = list(StatusChange.objects.filter(case=case).order_by("id").select_related("recorded_by"))
        previous_status, previous_day = Status.REPORTED, REPORTED_ON
        for change in history:
            assert change.from_status == previous_status
            assert change.to_status != change.from_status
            assert previous_day <= change.occurred_on
            assert change.occurred_on >= REPORTED_ON
            forward = (
                change.from_status in MAIN_PATH
                and change.to_status in MAIN_PATH
                and MAIN_PATH.index(change.to_status) > MAIN_PATH.index(change.from_status)
            )
            if not forward:
                assert change.recorded_by.role == Role.SUPERVISOR
            if change.is_correction or change.to_status == Status.WITHDRAWN:
                assert change.note
            assert (change.duplicate_of is not None) == (change.to_status == Status.DUPLICATE)
            if change.via is not None:
                assert change.to_status in {"return_requested", "repatriated", "reunified"}
            previous_status, previous_day = change.to_status, change.occurred_on
