"""Creating and editing cases through the service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from casework import services
from casework.models import Case, CaseEdit, CaseIdentifier
from casework.references import REFERENCE_RE, new_reference, normalise_reference
from casework.screening import linkage_digest
from tests.factories import InstitutionFactory

VALID = {"sex": "F", "birth_year": 2012, "oblast": "UA-65", "reported_on": dt.date(2024, 3, 1)}


def actor(user):
    return services.Actor.for_user(user)


def test_it_creates_a_case_with_a_random_reference(caseworker):
    cases = [services.create_case(actor=actor(caseworker), values=VALID) for _ in range(20)]
    references = [case.reference for case in cases]
    assert all(REFERENCE_RE.match(reference) for reference in references)
    assert len(set(references)) == 20
    assert references != sorted(references)  # not sequential
    assert all(case.organisation_id == caseworker.organisation_id and case.status == "reported" for case in cases)


def test_it_normalises_typed_references():
    reference = new_reference()
    assert normalise_reference(f" {reference.lower()} ") == reference
    assert normalise_reference("c-oil0-1234") == "C-0110-1234"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"sex": "X"}, "sex"),
        ({"oblast": "UA-99"}, "oblast"),
        ({"birth_year": 2025}, "birth_year"),
        ({"birth_year": 1950}, "birth_year"),
        ({"reported_on": dt.date.today() + dt.timedelta(days=1)}, "reported_on"),
        ({"displaced_on": dt.date(2024, 4, 1), "displaced_precision": "day"}, "displaced_on"),
        ({"displaced_on": dt.date(2023, 4, 1)}, "displaced_on"),
        ({"placement": "prison"}, "placement"),
        ({"source": "rumour"}, "source"),
        ({"notes": "Grandmother: granny@example.com"}, "notes"),
    ],
)
def test_it_refuses_bad_values_next_to_their_field(caseworker, values, field):
    with pytest.raises(ValidationError) as info:
        services.create_case(actor=actor(caseworker), values={**VALID, **values})
    assert field in info.value.message_dict
    assert not Case.objects.exists()


def test_it_refuses_an_assignee_from_another_organisation(caseworker, caseworker_b):
    with pytest.raises(ValidationError) as info:
        services.create_case(actor=actor(caseworker), values={**VALID, "assigned_to": caseworker_b})
    assert "assigned_to" in info.value.message_dict


@pytest.mark.parametrize("role", ["analyst", "org_admin"])
def test_it_refuses_roles_that_cannot_create(request, role):
    with pytest.raises(services.NotPermitted):
        services.create_case(actor=actor(request.getfixturevalue(role)), values=VALID)


def test_it_stores_identifiers_only_as_keyed_hashes(caseworker):
    case = services.create_case(actor=actor(caseworker), values=VALID, identifiers=[("register_number", "REG-000-777")])
    stored = CaseIdentifier.objects.get(case=case)
    assert stored.digest == linkage_digest("REG-000-777", kind="register_number")
    assert "777" not in stored.digest


def test_it_edits_a_case_and_records_which_fields_changed(case, caseworker):
    institution = InstitutionFactory()
    updated = services.update_case(
        case=case,
        actor=actor(caseworker),
        expected_version=1,
        values={"oblast": "UA-43", "institution": institution, "risk_military": True},
    )
    assert (updated.oblast, updated.version) == ("UA-43", 2)
    edit = CaseEdit.objects.get(case=case)
    assert set(edit.fields) == {"oblast", "institution", "risk_military"}
    assert edit.edited_by == caseworker


def test_it_refuses_a_stale_edit_and_names_what_changed(case, caseworker, supervisor):
    services.update_case(case=case, actor=actor(supervisor), expected_version=1, values={"oblast": "UA-43"})
    with pytest.raises(services.StaleVersion) as info:
        services.update_case(case=case, actor=actor(caseworker), expected_version=1, values={"birth_year": 2010})
    assert "oblast of origin edited by supervisor" in str(info.value)
    case.refresh_from_db()
    assert (case.birth_year, case.oblast, case.version) == (2012, "UA-43", 2)


def test_it_does_not_bump_the_version_when_nothing_changed(case, caseworker):
    services.update_case(case=case, actor=actor(caseworker), expected_version=1, values={"oblast": case.oblast})
    case.refresh_from_db()
    assert case.version == 1
    assert not CaseEdit.objects.exists()


def test_it_refuses_a_report_date_after_the_first_change(case, caseworker):
    services.change_status(
        case=case, actor=actor(caseworker), to_status="verified", occurred_on=dt.date(2023, 2, 1), expected_version=1
    )
    with pytest.raises(ValidationError) as info:
        services.update_case(
            case=case, actor=actor(caseworker), expected_version=2, values={"reported_on": dt.date(2023, 3, 1)}
        )
    assert "first status change" in info.value.message_dict["reported_on"][0]


def test_it_hides_another_organisations_case_from_edits(case, caseworker_b):
    with pytest.raises(services.CaseNotFound):
        services.update_case(case=case, actor=actor(caseworker_b), expected_version=1, values={"oblast": "UA-43"})


def test_it_refuses_edits_by_an_analyst(case, analyst):
    with pytest.raises(services.NotPermitted):
        services.update_case(case=case, actor=actor(analyst), expected_version=1, values={"oblast": "UA-43"})
