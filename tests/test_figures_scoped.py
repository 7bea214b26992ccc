"""One organisation's figures read that organisation's cases and moves, through indexes (issue 16).

On a random register of several organisations, the figures computed for one
organisation are those of the register split by organisation, and those of a
literal reading of section 4 over its cases alone. On PostgreSQL, the
statements' conditions contain the predicates of the partial indexes
``change_figures_moves`` and ``change_figures_exits`` word for word, so that
the planner can read the moves and the exits from them: a change of one without the other would silently bring back
a scan of the whole history, which only the plan shows.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import Organisation, Role, User
from casework import services
from reports.figures import (
    _Dialect,
    _figures_sql,
    _release_series_sql,
    compute_figures,
    compute_figures_by_organisation,
)
from tests.conftest import ensure_intermediaries, requires_postgres
from tests.factories import CaseFactory, OrganisationFactory, UserFactory
from tests.test_figures_definitions import FIRST_DAY, NOTE, histories, reference_figures

D = dt.date
VIA_STATUSES = ("return_requested", "repatriated", "reunified")


class ScopedFiguresAreTheRegistersSplit(TestCase):
    organisations: list[Organisation]
    admin: User
    vias: dict[str, Organisation]

    @classmethod
    def setUpTestData(cls) -> None:
        ensure_intermediaries()
        cls.organisations = [OrganisationFactory(slug=f"ngo-scoped-{index}") for index in range(3)]
        cls.admin = UserFactory(
            username="figures-scoped-admin", organisation=cls.organisations[0], role=Role.SUPERVISOR, is_superuser=True
        )
        cls.vias = {o.slug: o for o in Organisation.objects.filter(kind="intermediary")}

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.tuples(st.integers(0, 2), histories), min_size=1, max_size=3),
        st.lists(st.integers(min_value=-10, max_value=400), min_size=1, max_size=3),
    )
    def test_one_organisations_figures_are_its_share_of_the_registers(self, registers, as_of_offsets) -> None:
        actor = services.Actor.for_user(self.admin)
        for index, cases in registers:
            organisation = self.organisations[index]
            for reported, birth_year, sex, oblast, moves in cases:
                case = CaseFactory(
                    organisation=organisation,
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
                            via=self.vias[via] if via and to_status in VIA_STATUSES else None,
                            note=NOTE,
                        )
        for offset in as_of_offsets:
            as_of = FIRST_DAY + dt.timedelta(days=offset)
            _everyone, by_organisation = compute_figures_by_organisation(as_of=as_of)
            for organisation in self.organisations:
                own = compute_figures(as_of=as_of, organisation_id=organisation.pk)
                assert own == reference_figures(as_of=as_of, organisation=organisation)
                if organisation.pk in by_organisation:
                    assert own == by_organisation[organisation.pk]
                else:  # no case: nothing counted
                    assert own["totals"] == {"reported": 0, "repatriated": 0, "outstanding": 0}


def _plan(sql: str, params: list[object]) -> str:
    with connection.cursor() as cursor:
        # Tables of a test are tiny, so a scan is cheapest: forbid it, and see which indexes can serve instead.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@requires_postgres
@pytest.mark.django_db(transaction=False)
def test_one_organisations_figures_read_its_cases_and_moves_through_indexes(ngo_a) -> None:
    as_of = D(2024, 1, 1)
    plan = _plan(_figures_sql(_Dialect("postgresql"), scoped=True), [as_of, ngo_a.pk, as_of, as_of, ngo_a.pk])
    assert "change_figures_moves" in plan, plan
    assert "change_figures_exits" in plan, plan
    assert "Index Cond: (organisation_id = " in plan, plan
    assert "Seq Scan on casework_statuschange" not in plan, plan


@requires_postgres
@pytest.mark.django_db(transaction=False)
def test_the_registers_figures_and_release_series_read_the_moves_from_their_index() -> None:
    as_of = D(2024, 1, 1)
    for sql in (_figures_sql(_Dialect("postgresql"), scoped=False), _release_series_sql(_Dialect("postgresql"))):
        plan = _plan(sql, [as_of, as_of, as_of])
        assert "change_figures_moves" in plan, plan
        assert "change_figures_exits" in plan, plan
        assert "Seq Scan on casework_statuschange" not in plan, plan
