"""Children, not records (DESIGN.md section 4) on hand-built groups of linked cases, worked out by hand.

A child's status is the most advanced of its cases counted in reported(D); its return event the earliest
among its cases in repatriated(D); its oblast, sex and age band those of its earliest reported case. The
register-wide figures count children, with ``records`` (cases) beside ``totals``; an organisation's own
figures count its cases.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from accounts.models import Organisation, Role
from casework import services
from linkage import services as linkage_services
from reports.figures import compute_figures, compute_figures_by_organisation
from tests.factories import CaseFactory, UserFactory

D = dt.date
AS_OF = D(2023, 12, 31)


@pytest.fixture
def make_case(db, ngo_a, ngo_b):
    admin = UserFactory(username="children-admin", organisation=ngo_a, role=Role.SUPERVISOR, is_superuser=True)
    vias = {o.slug: o for o in Organisation.objects.filter(kind="intermediary")}

    def make(*moves, organisation=None, **fields):
        case = CaseFactory(organisation=organisation or ngo_a, **fields)
        for to_status, day, *rest in moves:
            services.change_status(
                case=case,
                actor=services.Actor.for_user(admin),
                to_status=to_status,
                occurred_on=day,
                expected_version=case.version,
                via=vias[rest[0]] if rest and rest[0] else None,
                note="A correction, with its reason.",
            )
        return case

    return make


def link(*cases, decision="same"):
    """Decide each successive pair, as the command line does (the trail is what the figures read)."""
    for first, second in itertools.pairwise(cases):
        linkage_services.decide_by_command(case_a=first, case_b=second, decision=decision)


def test_a_child_reported_twice_counts_once_with_the_most_advanced_status(make_case, ngo_b):
    earlier = make_case(("verified", D(2023, 2, 1)), reported_on=D(2023, 1, 10), oblast="UA-14", sex="F")
    later = make_case(
        ("repatriated", D(2023, 6, 1), "qatar"),
        organisation=ngo_b,
        reported_on=D(2023, 3, 2),
        oblast="UA-65",
        sex="U",
        birth_year=2016,
    )
    before = compute_figures(as_of=AS_OF)
    assert (
        before["totals"]
        == before["records"] | {"outstanding": 1}
        == {
            "reported": 2,
            "repatriated": 1,
            "outstanding": 1,
        }
    )
    link(earlier, later)
    result = compute_figures(as_of=AS_OF)
    assert result["totals"] == {"reported": 1, "repatriated": 1, "outstanding": 0}
    assert result["records"] == {"reported": 2, "repatriated": 1}
    # The earliest report's oblast, sex and age band (2023 - 2012: 10-13), even for the repatriation.
    assert result["by_oblast"] == {"UA-14": {"reported": 1, "repatriated": 1}}
    assert result["by_sex"]["F"] == {"reported": 1, "repatriated": 1} and result["by_sex"]["U"]["reported"] == 0
    assert result["by_age_band"]["10-13"] == {"reported": 1, "repatriated": 1}
    assert result["by_age_band"]["5-9"]["reported"] == 0
    # Its return event is the later case's: qatar, 91 days after that case's report.
    assert result["by_via"]["qatar"] == 1 and result["median_days_to_return"] == 91.0
    # Monthly: one child from January; repatriated from June.
    months = {month["month"]: (month["reported"], month["repatriated"]) for month in result["monthly"]}
    assert months["2023-01"] == (1, 0) and months["2023-03"] == (1, 0) and months["2023-06"] == (1, 1)
    assert months["2023-12"] == (1, 1)


def test_the_earliest_return_event_among_the_cases_counts(make_case, ngo_b):
    first = make_case(("repatriated", D(2023, 5, 1), "vatican"), reported_on=D(2023, 1, 20))
    second = make_case(("repatriated", D(2023, 4, 1), "qatar"), organisation=ngo_b, reported_on=D(2023, 3, 1))
    link(first, second)
    result = compute_figures(as_of=AS_OF)
    assert result["totals"]["repatriated"] == 1 and result["records"]["repatriated"] == 2
    assert result["by_via"]["qatar"] == 1 and result["by_via"]["vatican"] == 0
    assert result["median_days_to_return"] == 31.0  # 1 March to 1 April, the returning case's own report
    # Before the second return, the first is the only one: as of April 15, qatar's.
    april = compute_figures(as_of=D(2023, 4, 15))
    assert april["by_via"]["qatar"] == 1 and april["totals"]["repatriated"] == 1


def test_a_withdrawn_report_leaves_the_child_counted_by_its_other_case(make_case, ngo_b):
    withdrawn = make_case(("withdrawn", D(2023, 2, 1)), reported_on=D(2023, 1, 5), oblast="UA-14")
    kept = make_case(organisation=ngo_b, reported_on=D(2023, 2, 10), oblast="UA-09")
    link(withdrawn, kept)
    result = compute_figures(as_of=AS_OF)
    assert result["totals"]["reported"] == 1 and result["records"]["reported"] == 1
    # Attributes of the earliest reported case, the withdrawn one.
    assert result["by_oblast"] == {"UA-14": {"reported": 1, "repatriated": 0}}
    # In January the child had only its withdrawn-later report, not yet withdrawn: counted; in February
    # its first report is withdrawn and its second counts it.
    months = {month["month"]: month["reported"] for month in result["monthly"]}
    assert months["2023-01"] == 1 and months["2023-02"] == 1


def test_links_join_transitively_and_a_reversed_link_splits_the_child(make_case, ngo_b):
    cases = [make_case(reported_on=D(2023, 1, 1) + dt.timedelta(days=day)) for day in (0, 10, 20)]
    link(*cases)
    assert compute_figures(as_of=AS_OF)["totals"]["reported"] == 1
    link(cases[1], cases[2], decision="different")
    assert compute_figures(as_of=AS_OF)["totals"]["reported"] == 2
    link(cases[0], cases[1], decision="different")
    result = compute_figures(as_of=AS_OF)
    assert result["totals"]["reported"] == result["records"]["reported"] == 3


def test_a_case_not_yet_reported_on_d_does_not_make_its_child_exist(make_case, ngo_b):
    early = make_case(reported_on=D(2023, 1, 5), oblast="UA-14")
    late = make_case(organisation=ngo_b, reported_on=D(2023, 9, 1), oblast="UA-65")
    link(early, late)
    june = compute_figures(as_of=D(2023, 6, 30))
    assert june["totals"]["reported"] == june["records"]["reported"] == 1
    assert june["by_oblast"] == {"UA-14": {"reported": 1, "repatriated": 0}}


def test_an_organisations_own_figures_count_its_cases(make_case, ngo_a, ngo_b):
    first = make_case(reported_on=D(2023, 1, 5))
    second = make_case(organisation=ngo_b, reported_on=D(2023, 2, 5))
    twin = make_case(organisation=ngo_b, reported_on=D(2023, 3, 5))
    link(first, second, twin)
    own = compute_figures(as_of=AS_OF, organisation_id=ngo_b.pk)
    assert own["totals"]["reported"] == own["records"]["reported"] == 2
    everyone, by_organisation = compute_figures_by_organisation(as_of=AS_OF)
    assert everyone["totals"]["reported"] == 1 and everyone["records"]["reported"] == 3
    assert by_organisation[ngo_b.pk]["totals"]["reported"] == 2
    assert by_organisation[ngo_a.pk]["totals"]["reported"] == 1


def test_children_cost_the_same_queries_for_one_group_or_many(make_case, ngo_b, django_assert_num_queries):
    link(make_case(reported_on=D(2023, 1, 5)), make_case(organisation=ngo_b, reported_on=D(2023, 1, 6)))
    # The figures statement; the confirmed links; the linked cases and their histories; the slugs.
    with django_assert_num_queries(5):
        compute_figures(as_of=AS_OF)
    for day in range(10):
        link(
            make_case(reported_on=D(2023, 2, 1) + dt.timedelta(days=day)),
            make_case(organisation=ngo_b, reported_on=D(2023, 3, 1) + dt.timedelta(days=day)),
        )
    with django_assert_num_queries(5):
        result = compute_figures(as_of=AS_OF)
    assert result["totals"]["reported"] == 11 and result["records"]["reported"] == 22
