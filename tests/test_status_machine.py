"""The status machine of DESIGN.md section 3, through its one service."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Organisation, User
from casework import services
from casework.models import Case, Status, StatusChange
from tests.factories import CaseFactory, OrganisationFactory

MAIN = ["reported", "verified", "located", "return_requested", "repatriated", "reunified"]
ALL = [*MAIN, "duplicate", "withdrawn"]
D = dt.date(2023, 6, 1)


def move(case: Case, user: User, to: str, **kwargs) -> StatusChange:
    kwargs.setdefault("occurred_on", D)
    kwargs.setdefault("expected_version", case.version)
    return services.change_status(case=case, actor=services.Actor.for_user(user), to_status=to, **kwargs)


def put_case_in(status: str, *, supervisor: User, organisation: Organisation) -> Case:
    """A fresh case whose current status is ``status``, reached by a supervisor."""
    case = CaseFactory(organisation=organisation, reported_on=dt.date(2023, 1, 10))
    if status == "reported":
        return case
    survivor = CaseFactory(organisation=organisation)
    move(
        case,
        supervisor,
        status,
        occurred_on=dt.date(2023, 2, 1),
        note="set-up",
        duplicate_of=survivor if status == "duplicate" else None,
    )
    return case


def expected_outcome(role: str, current: str, to: str) -> str:
    """The rules written out independently of the code under test."""
    if current == to:
        return "refused"
    forward = current in MAIN and to in MAIN and MAIN.index(to) > MAIN.index(current)
    if forward:
        return "allowed"
    return "allowed" if role == "supervisor" else "not_permitted"


@pytest.mark.parametrize(("current", "to"), list(itertools.product(ALL, ALL)))
@pytest.mark.parametrize("role", ["caseworker", "supervisor"])
def test_it_allows_and_refuses_every_move(request, role, current, to, supervisor, ngo_a):
    user = request.getfixturevalue(role)
    case = put_case_in(current, supervisor=supervisor, organisation=ngo_a)
    survivor = CaseFactory(organisation=ngo_a)
    kwargs = {
        "note": "reason given for the move",
        "duplicate_of": survivor if to == "duplicate" else None,
        "occurred_on": dt.date(2023, 3, 1),
    }
    outcome = expected_outcome(role, current, to)
    before = StatusChange.objects.filter(case=case).count()
    if outcome == "allowed":
        change = move(case, user, to, **kwargs)
        case.refresh_from_db()
        assert case.status == to
        assert change.from_status == current
        assert change.is_correction == (
            current in {"duplicate", "withdrawn"}
            or (to in MAIN and current in MAIN and MAIN.index(to) < MAIN.index(current))
        )
    else:
        error = services.NotPermitted if outcome == "not_permitted" else ValidationError
        with pytest.raises(error):
            move(case, user, to, **kwargs)
        case.refresh_from_db()
        assert case.status == current
        assert StatusChange.objects.filter(case=case).count() == before


def test_it_lets_forward_moves_skip_steps(case, caseworker, qatar):
    change = move(case, caseworker, "repatriated", via=qatar)
    case.refresh_from_db()
    assert (case.status, case.version, change.via) == ("repatriated", 2, qatar)
    assert not change.is_correction


def test_it_requires_a_reason_for_a_correction(case, supervisor):
    move(case, supervisor, "located")
    with pytest.raises(ValidationError) as info:
        move(case, supervisor, "verified", note="  ")
    assert "note" in info.value.message_dict
    move(case, supervisor, "verified", note="Location was a different child.")
    case.refresh_from_db()
    assert case.status == "verified"


def test_it_requires_a_reason_to_withdraw(case, supervisor):
    with pytest.raises(ValidationError) as info:
        move(case, supervisor, "withdrawn")
    assert "note" in info.value.message_dict


def test_it_requires_a_surviving_case_for_a_duplicate(case, supervisor, ngo_a, ngo_b):
    with pytest.raises(ValidationError) as info:
        move(case, supervisor, "duplicate")
    assert "Name the surviving case" in info.value.message_dict["duplicate_of"][0]
    with pytest.raises(ValidationError, match="itself"):
        move(case, supervisor, "duplicate", duplicate_of=case)
    other_duplicate = put_case_in("duplicate", supervisor=supervisor, organisation=ngo_a)
    with pytest.raises(ValidationError, match="itself a duplicate"):
        move(case, supervisor, "duplicate", duplicate_of=other_duplicate)
    foreign = CaseFactory(organisation=ngo_b)
    with pytest.raises(ValidationError, match="same organisation"):
        move(case, supervisor, "duplicate", duplicate_of=foreign)
    survivor = CaseFactory(organisation=ngo_a)
    change = move(case, supervisor, "duplicate", duplicate_of=survivor)
    assert change.duplicate_of == survivor


def test_a_withdrawn_case_found_to_be_a_duplicate_is_a_correction_with_a_reason(case, supervisor, ngo_a):
    move(case, supervisor, "withdrawn", note="The family withdrew the report.")
    survivor = CaseFactory(organisation=ngo_a)
    with pytest.raises(ValidationError) as info:
        move(case, supervisor, "duplicate", duplicate_of=survivor)
    assert "reason" in info.value.message_dict["note"][0]
    change = move(case, supervisor, "duplicate", duplicate_of=survivor, note="Same child as the surviving case.")
    assert change.is_correction and change.note


def test_it_refuses_a_surviving_case_on_other_moves(case, supervisor, ngo_a):
    with pytest.raises(ValidationError) as info:
        move(case, supervisor, "verified", duplicate_of=CaseFactory(organisation=ngo_a))
    assert "duplicate_of" in info.value.message_dict


def test_it_refuses_a_move_to_the_current_status(case, supervisor):
    with pytest.raises(ValidationError, match="already"):
        move(case, supervisor, "reported")


def test_it_refuses_an_unknown_status(case, supervisor):
    with pytest.raises(ValidationError, match="not a status"):
        move(case, supervisor, "found")


def test_it_accepts_via_only_on_return_statuses_and_only_intermediaries(case, caseworker, qatar, ngo_b):
    with pytest.raises(ValidationError) as info:
        move(case, caseworker, "located", via=qatar)
    assert "via" in info.value.message_dict
    with pytest.raises(ValidationError, match="not an intermediary"):
        move(case, caseworker, "return_requested", via=ngo_b)
    assert move(case, caseworker, "return_requested", via=qatar).via == qatar


def test_it_checks_the_date(case, caseworker):
    with pytest.raises(ValidationError, match="before the case was reported"):
        move(case, caseworker, "verified", occurred_on=dt.date(2023, 1, 9))
    with pytest.raises(ValidationError, match="future"):
        move(case, caseworker, "verified", occurred_on=dt.date.today() + dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="Give the date"):
        move(case, caseworker, "verified", occurred_on=None)
    move(case, caseworker, "verified", occurred_on=dt.date(2023, 5, 1))
    with pytest.raises(ValidationError, match="latest change"):
        move(case, caseworker, "located", occurred_on=dt.date(2023, 4, 30))
    # Same day as the latest change, and the report day itself, are fine.
    move(case, caseworker, "located", occurred_on=dt.date(2023, 5, 1))
    case.refresh_from_db()
    assert case.status == "located"


def test_it_accepts_a_change_on_the_report_day(case, caseworker):
    move(case, caseworker, "verified", occurred_on=case.reported_on)
    case.refresh_from_db()
    assert case.status == "verified"


def test_it_screens_the_note(case, supervisor):
    with pytest.raises(ValidationError, match="phone number"):
        move(case, supervisor, "withdrawn", note="Mother called from +380 67 123 4567")
    case.refresh_from_db()
    assert case.status == "reported"


def test_it_refuses_a_stale_version_and_says_what_changed(case, caseworker, supervisor):
    loaded_version = case.version
    move(case, supervisor, "verified")
    stale = Case.objects.get(pk=case.pk)
    stale.version = loaded_version
    with pytest.raises(services.StaleVersion) as info:
        move(stale, caseworker, "located", expected_version=loaded_version)
    conflict = info.value
    assert (conflict.expected_version, conflict.current_version) == (1, 2)
    assert "Reported → Verified by supervisor" in str(conflict)
    case.refresh_from_db()
    assert case.status == "verified"
    assert StatusChange.objects.filter(case=case).count() == 1


@pytest.mark.parametrize("role", ["analyst", "org_admin"])
def test_it_refuses_roles_without_case_rights(request, role, case):
    user = request.getfixturevalue(role)
    with pytest.raises(services.NotPermitted):
        move(case, user, "verified")


def test_it_hides_another_organisations_case(case, caseworker_b):
    with pytest.raises(services.CaseNotFound):
        move(case, caseworker_b, "verified")
    assert not StatusChange.objects.filter(case=case).exists()


def test_it_keeps_the_history_append_only(case, supervisor):
    change = move(case, supervisor, "verified")
    with pytest.raises(PermissionError):
        StatusChange.objects.filter(pk=change.pk).update(note="rewritten")
    with pytest.raises(PermissionError):
        StatusChange.objects.filter(pk=change.pk).delete()
    with pytest.raises(PermissionError):
        change.delete()
    change.note = "rewritten"
    with pytest.raises(PermissionError):
        change.save()
    assert StatusChange.objects.get(pk=change.pk).note == ""


def test_it_offers_only_allowed_targets():
    assert services.allowed_targets("located", can_correct=False) == ["return_requested", "repatriated", "reunified"]
    assert set(services.allowed_targets("located", can_correct=True)) == set(ALL) - {"located"}
    assert services.allowed_targets("duplicate", can_correct=False) == []


def test_it_lets_a_superuser_act_on_any_organisation(case, db):
    other = OrganisationFactory(slug="admins")
    admin = User.objects.create_superuser(username="root", password="x" * 16, organisation=other)
    move(case, admin, "withdrawn", note="Report found to be wrong.")
    case.refresh_from_db()
    assert case.status == Status.WITHDRAWN
