"""Releases (reports.releases, reports.models.Release): who prepares and approves, order, spacing, budget, immutability.

The method itself is tested in tests/test_protection.py; the attacks on a year
of releases in tests/test_release_attacks.py; the pages in tests/test_release_views.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from accounts.models import Organisation, Role
from reports import releases, selectors
from reports.models import Release, ReleaseApproval, Snapshot
from reports.services import NotPermitted
from tests.conftest import requires_postgres, requires_two_roles
from tests.factories import CaseFactory, UserFactory

D = dt.date


@pytest.fixture
def host(ngo_a):
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    return ngo_a


@pytest.fixture
def register(host, ngo_b):
    """Twenty cases, reported from 2024 on, in two organisations."""
    for day in range(20):
        CaseFactory(organisation=host if day % 3 else ngo_b, reported_on=D(2024, 1, 1) + dt.timedelta(days=day * 9))


@pytest.fixture
def host_supervisor(host):
    return UserFactory(username="host-supervisor", organisation=host, role=Role.SUPERVISOR)


@pytest.fixture
def host_analyst(host):
    return UserFactory(username="host-analyst", organisation=host, role=Role.ANALYST)


@pytest.fixture
def second_supervisor(host):
    return UserFactory(username="host-supervisor-2", organisation=host, role=Role.SUPERVISOR)


AS_OF = D(2025, 1, 31)


def prepare(user, as_of=AS_OF, note=""):
    return releases.prepare_release(user=user, as_of=as_of, note=note)


# --- preparing and approving ----------------------------------------------------------------


def test_it_prepares_a_draft_from_a_snapshot_and_publishes_it_when_approved(register, host_analyst, host_supervisor):
    draft = prepare(host_analyst, note="Quarterly figures for the coalition.")
    assert draft.number == 1 and draft.state == Release.State.DRAFT
    assert draft.snapshot.trigger == Snapshot.Trigger.RELEASE and draft.snapshot.state == Snapshot.State.DONE
    assert draft.snapshot.series is not None and draft.snapshot.exact["totals"]["reported"] == 20
    assert draft.figures["release"] == 1 and draft.figures["as_of"] == "2025-01-31"
    assert draft.figures["totals"] == {"reported": 20, "repatriated": None, "outstanding": 20}
    assert draft.prepared_by == host_analyst and draft.prepared_through == Release.Door.WEB
    assert selectors.latest_release() is None  # a draft is not published
    assert selectors.published_releases().count() == 0

    approved = releases.approve_release(user=host_supervisor, release=draft)
    assert approved.state == Release.State.APPROVED and approved.approved_at is not None
    assert [(a.approver, a.approved_through) for a in approved.approvals.all()] == [(host_supervisor, "web")]
    assert selectors.latest_release() == approved == selectors.release_by_number(1)


def test_it_records_the_method_and_what_it_spent(register, host_analyst, settings):
    draft = prepare(host_analyst)
    assert draft.method == "zcdp-discrete-gaussian"
    # ρ = 10/14 split 0.8 / 0.2: σ² = 10 / (2 · 0.8 ρ) = 8.75 for the headline series, 35 for the lists.
    assert draft.rho == pytest.approx(10 / 14) and draft.sigma == pytest.approx(8.75**0.5, rel=1e-6)
    assert draft.parameters["lists_sigma"] == pytest.approx(35**0.5, rel=1e-6)
    assert draft.parameters["list_intermediaries_per_child"] == 2
    assert draft.min_cell == 5
    assert draft.parameters["rho_per_year"] == 10.0 and draft.parameters["min_days"] == 28
    assert draft.parameters["releases_per_year_at_most"] == 14
    assert draft.parameters["opendp"] == "0.16.0"
    assert draft.figures["method"] == draft.parameters


def test_the_draft_is_seen_only_by_those_who_handle_drafts(register, host_analyst, caseworker, supervisor, ngo_b):
    draft = prepare(host_analyst)
    other_supervisor = UserFactory(username="b-supervisor", organisation=ngo_b, role=Role.SUPERVISOR)
    assert list(selectors.releases_for(host_analyst)) == [draft]
    for reader in (caseworker, other_supervisor):
        assert list(selectors.releases_for(reader)) == []
        assert selectors.release_for(reader, draft.number) is None


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.ORG_ADMIN])
def test_other_roles_of_the_host_cannot_prepare(register, host, role):
    user = UserFactory(username=f"host-{role}", organisation=host, role=role)
    with pytest.raises(NotPermitted):
        prepare(user)
    assert not Release.objects.exists() and not Snapshot.objects.exists()


def test_another_organisations_supervisor_neither_prepares_nor_approves(register, host_analyst, ngo_b):
    outsider = UserFactory(username="b-supervisor", organisation=ngo_b, role=Role.SUPERVISOR)
    with pytest.raises(NotPermitted):
        prepare(outsider)
    draft = prepare(host_analyst)
    with pytest.raises(NotPermitted):
        releases.approve_release(user=outsider, release=draft)
    with pytest.raises(NotPermitted):
        releases.discard_release(user=outsider, release=draft)
    draft.refresh_from_db()
    assert draft.state == Release.State.DRAFT and not draft.approvals.exists()


def test_an_analyst_prepares_but_does_not_approve(register, host_analyst):
    draft = prepare(host_analyst)
    with pytest.raises(NotPermitted):
        releases.approve_release(user=host_analyst, release=draft)


def test_with_one_approver_the_preparing_supervisor_may_approve(register, host_supervisor):
    draft = prepare(host_supervisor)
    assert releases.approve_release(user=host_supervisor, release=draft).state == Release.State.APPROVED


def test_with_two_approvers_two_others_than_the_preparer_approve(
    register, host_supervisor, second_supervisor, settings
):
    settings.FIGURES_RELEASE_APPROVERS = 2
    third = UserFactory(username="host-supervisor-3", organisation=host_supervisor.organisation, role=Role.SUPERVISOR)
    draft = prepare(host_supervisor)
    with pytest.raises(ValidationError, match="other than the one who prepared"):
        releases.approve_release(user=host_supervisor, release=draft)
    assert releases.approve_release(user=second_supervisor, release=draft).state == Release.State.DRAFT
    with pytest.raises(ValidationError, match="already"):
        releases.approve_release(user=second_supervisor, release=draft)
    assert draft.approvals.count() == 1
    approved = releases.approve_release(user=third, release=draft)
    assert approved.state == Release.State.APPROVED
    assert {a.approver for a in approved.approvals.all()} == {second_supervisor, third}


def test_a_draft_can_be_discarded_and_its_number_is_used_again(register, host_analyst, host_supervisor):
    first = prepare(host_analyst, as_of=D(2025, 1, 1))
    releases.discard_release(user=host_supervisor, release=first)
    assert not Release.objects.exists()
    again = prepare(host_analyst, as_of=D(2025, 1, 2))
    assert again.number == 1


def test_an_approved_release_is_never_discarded(register, host_supervisor):
    release = releases.approve_release(user=host_supervisor, release=prepare(host_supervisor))
    with pytest.raises(ValidationError):
        releases.discard_release(user=host_supervisor, release=release)
    assert Release.objects.filter(pk=release.pk).exists()


def test_one_draft_at_a_time(register, host_analyst):
    prepare(host_analyst, as_of=D(2025, 1, 1))
    with pytest.raises(ValidationError, match="draft awaiting approval"):
        prepare(host_analyst, as_of=D(2025, 3, 1))
    assert Release.objects.count() == 1
    assert Snapshot.objects.count() == 1  # refused before reading the register


# --- order, spacing, budget ------------------------------------------------------------------


def release(user, as_of):
    return releases.approve_release(user=user, release=prepare(user, as_of=as_of))


def test_releases_are_numbered_in_the_order_of_their_dates_at_least_min_days_apart(register, host_supervisor):
    assert release(host_supervisor, D(2024, 6, 30)).number == 1
    for refused in (D(2024, 6, 30), D(2024, 6, 1), D(2024, 7, 27)):
        with pytest.raises(ValidationError, match="at least 28 days apart"):
            prepare(host_supervisor, as_of=refused)
    assert release(host_supervisor, D(2024, 7, 28)).number == 2
    assert [r.number for r in selectors.published_releases()] == [2, 1]


def test_it_refuses_a_date_in_the_future_or_before_the_series(register, host_supervisor):
    for day, message in ((D(2099, 1, 1), "future"), (D(2021, 12, 31), "Releases start in 2022-02")):
        with pytest.raises(ValidationError, match=message):
            prepare(host_supervisor, as_of=day)
    assert not Release.objects.exists() and not Snapshot.objects.exists()


def test_a_note_with_personal_data_is_refused(register, host_supervisor):
    with pytest.raises(ValidationError) as refused:
        prepare(host_supervisor, note="Call the mother at +380 67 123 4567.")
    assert "note" in refused.value.message_dict
    with pytest.raises(ValidationError):
        prepare(host_supervisor, note="x" * 2001)
    assert not Release.objects.exists()


def test_it_refuses_a_release_the_budget_cannot_pay_for(register, host_supervisor, settings):
    """Weekly releases for a year spend the whole budget; a lower budget then waits for old releases to age out."""
    settings.FIGURES_RELEASE_MIN_DAYS = 7
    first = D(2024, 1, 5)
    for week in range(53):
        release(host_supervisor, first + dt.timedelta(days=7 * week))
    assert sum(r.rho for r in Release.objects.all()) == pytest.approx(10.0)
    # The fastest cadence makes each release cheaper (ρ/53 instead of ρ/14), never the budget larger.
    assert Release.objects.first().rho == pytest.approx(10 / 53)
    # The budget lowered to 5: a release at 5/53 must wait until 26 of the 52 still in the window are out.
    settings.FIGURES_PRIVACY_RHO_PER_YEAR = 5.0
    as_of = first + dt.timedelta(days=7 * 53)
    with pytest.raises(ValidationError, match="privacy-loss budget is spent"):
        prepare(host_supervisor, as_of=as_of)
    next_date = first + dt.timedelta(days=7 * 26 + 365)
    assert selectors.release_budget(as_of, rho=5 / 53).next_date == next_date
    assert not selectors.release_budget(next_date - dt.timedelta(days=1), rho=5 / 53).fits
    assert selectors.release_budget(next_date, rho=5 / 53).fits
    assert Release.objects.count() == 53 and Snapshot.objects.count() == 53


def test_the_budget_counts_the_365_days_up_to_the_date(register, host_supervisor, settings):
    settings.FIGURES_PRIVACY_RHO_PER_YEAR = 1.0
    settings.FIGURES_RELEASE_MIN_DAYS = 183  # two releases a year: ρ/2 each
    release(host_supervisor, D(2024, 1, 1))
    release(host_supervisor, D(2024, 7, 2))
    budget = selectors.release_budget(D(2024, 12, 30), rho=0.5)
    assert budget.spent == pytest.approx(1.0) and not budget.fits
    assert budget.next_date == D(2024, 12, 31)  # 2024-01-01 + 365 days (2024 is a leap year)
    assert selectors.release_budget(D(2024, 12, 31), rho=0.5).fits
    # At the settings' own cadence the spacing binds first: the budget only refuses after a settings change.
    assert release(host_supervisor, D(2025, 1, 1)).number == 3


def test_the_command_line_makes_an_approved_release_recorded_as_such(register):
    made, new = releases.release_figures_from_command(as_of=D(2025, 1, 31), note="Scripted.")
    assert new and made.state == Release.State.APPROVED and made.prepared_by is None
    assert made.prepared_through == "command"
    assert [(a.approver, a.approved_through) for a in made.approvals.all()] == [(None, "command")]
    again, new = releases.release_figures_from_command(as_of=D(2025, 1, 31), unless_released=True)
    assert again == made and not new
    with pytest.raises(ValidationError, match="at least 28 days"):
        releases.release_figures_from_command(as_of=D(2025, 1, 31))


def test_it_reads_only_approved_releases_by_number(register, host_supervisor):
    draft = prepare(host_supervisor)
    assert selectors.release_by_number(draft.number) is None
    assert selectors.release_by_number(0) is None and selectors.release_by_number(2**40) is None
    assert selectors.release_for(host_supervisor, 2**40) is None


# --- immutability ------------------------------------------------------------------------------


def test_the_model_refuses_to_change_or_delete_an_approved_release(register, host_supervisor):
    approved = release(host_supervisor, D(2025, 1, 31))
    approved.note = "Edited afterwards."
    with pytest.raises(PermissionError):
        approved.save()
    with pytest.raises(PermissionError):
        approved.delete()
    approval = approved.approvals.get()
    with pytest.raises(PermissionError):
        approval.save()
    with pytest.raises(PermissionError):
        approval.delete()
    with pytest.raises(PermissionError):
        ReleaseApproval(release=approved, approver=None, approved_through="command").save()
    approved.refresh_from_db()
    assert approved.note == "" and approved.approvals.count() == 1


def test_the_model_creates_releases_only_as_drafts(register, host_supervisor):
    draft = prepare(host_supervisor)
    copy = Release(
        number=2,
        as_of=D(2025, 3, 1),
        state=Release.State.APPROVED,
        snapshot=draft.snapshot,
        figures={},
        method="none",
        parameters={},
        rho=1,
        sigma=1,
        min_cell=5,
        prepared_through="web",
    )
    with pytest.raises(PermissionError):
        copy.save()


def test_the_admin_shows_releases_read_only_to_superusers(client, register, host_supervisor):
    approved = release(host_supervisor, D(2025, 1, 31))
    admin = UserFactory(username="root", organisation=host_supervisor.organisation, is_superuser=True, is_staff=True)
    client.force_login(admin)
    page = client.get(f"/admin/reports/release/{approved.pk}/change/")
    assert page.status_code == 200 and "zcdp-discrete-gaussian" in page.text
    assert 'name="_save"' not in page.text
    assert client.post(f"/admin/reports/release/{approved.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/reports/release/{approved.pk}/change/", {"note": "x"}).status_code == 403
    assert client.get("/admin/reports/release/add/").status_code == 403
    approved.refresh_from_db()
    assert approved.note == ""


def _refused(statement, params=()):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


@requires_postgres
def test_the_database_refuses_to_change_an_approved_release_or_its_approvals(register, host_supervisor):
    approved = release(host_supervisor, D(2025, 1, 31))
    draft = prepare(host_supervisor, as_of=D(2025, 3, 1))
    for statement in (
        "UPDATE reports_release SET note = 'edited' WHERE id = %s",
        "UPDATE reports_release SET figures = '{}' WHERE id = %s",
        "UPDATE reports_release SET state = 'draft', approved_at = NULL WHERE id = %s",
        "DELETE FROM reports_release WHERE id = %s",
        "UPDATE reports_releaseapproval SET approver_id = NULL WHERE release_id = %s",
        "DELETE FROM reports_releaseapproval WHERE release_id = %s",
        "INSERT INTO reports_releaseapproval (release_id, approved_through, at) VALUES (%s, 'command', now())",
    ):
        _refused(statement, [approved.pk])
    _refused("TRUNCATE reports_release CASCADE")
    _refused("TRUNCATE reports_releaseapproval")
    # A draft is approved by the service only: never edited, never approved without an approval.
    _refused("UPDATE reports_release SET figures = '{}' WHERE id = %s", [draft.pk])
    _refused("UPDATE reports_release SET state = 'approved', approved_at = now() WHERE id = %s", [draft.pk])
    # Out of order: a release before the last one, or created approved.
    _refused(
        "INSERT INTO reports_release (number, as_of, state, snapshot_id, figures, method, parameters, rho, sigma, "
        "min_cell, prepared_at, prepared_through, note) SELECT 9, '2024-01-01', 'draft', snapshot_id, figures, "
        "method, parameters, rho, sigma, min_cell, now(), 'web', '' FROM reports_release WHERE id = %s",
        [approved.pk],
    )
    approved.refresh_from_db()
    assert approved.note == "" and approved.state == Release.State.APPROVED and approved.approvals.count() == 1


@requires_two_roles
def test_the_applications_role_cannot_get_past_the_trigger(register, host_supervisor):
    approved = release(host_supervisor, D(2025, 1, 31))
    for statement in (
        "UPDATE reports_release SET note = 'edited' WHERE id = %s",
        "DELETE FROM reports_releaseapproval WHERE release_id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL register.retention = 'on'")  # the owner's switch: not the app's
            cursor.execute(statement, [approved.pk])
    for statement in (
        "ALTER TABLE reports_release DISABLE TRIGGER ALL",
        "DROP TRIGGER reports_release_guard ON reports_release",
        "CREATE OR REPLACE FUNCTION reports_release_guard() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ "
        "LANGUAGE plpgsql",
    ):
        _refused(statement)
    approved.refresh_from_db()
    assert approved.note == ""


def test_a_release_counts_children_when_organisations_reported_the_same_child(host, ngo_b):
    """Confirmed links make one child: the release's totals, its breakdowns and its series (by month of report
    and of return, by days to return) all count the child once, and still add up (they were records before)."""
    from casework import services as case_services
    from linkage import services as linkage_services

    supervisor_b = UserFactory(username="supervisor-b", organisation=ngo_b, role=Role.SUPERVISOR)
    cases = []
    for day in range(12):
        cases.append(CaseFactory(organisation=host, reported_on=D(2024, 1, 1) + dt.timedelta(days=day * 9)))
    twin_a = CaseFactory(organisation=host, reported_on=D(2024, 3, 1), oblast="UA-14", sex="F")
    twin_b = CaseFactory(organisation=ngo_b, reported_on=D(2024, 5, 2), oblast="UA-14", sex="F")
    for case, day in ((twin_b, D(2024, 8, 1)),):
        for status, when in (("verified", day), ("located", day), ("repatriated", day + dt.timedelta(days=3))):
            case_services.change_status(
                case=case,
                actor=case_services.Actor.for_user(supervisor_b),
                to_status=status,
                occurred_on=when,
                expected_version=case.version,
                via=Organisation.objects.get(slug="qatar") if status == "repatriated" else None,
            )
            case.refresh_from_db()
    linkage_services.decide_by_command(case_a=twin_a, case_b=twin_b, decision="same")
    made, _new = releases.release_figures_from_command(as_of=D(2025, 1, 31))
    totals = made.figures["totals"]
    assert totals["reported"] == 13 and totals["repatriated"] is None  # one child back: fewer than k
    assert made.figures["records"]["reported"] == 14
    # The monthly series count children as well: their running sum ends at the exact total (noisy months, exact sum).
    assert made.figures["monthly"][-1]["reported"] == 13
    shown = [cell["reported"] for cell in made.figures["by_sex"].values() if cell["reported"] is not None]
    hidden = sum(cell["reported"] is None for cell in made.figures["by_sex"].values())
    assert sum(shown) <= 13 <= sum(shown) + hidden * (made.min_cell - 1)
