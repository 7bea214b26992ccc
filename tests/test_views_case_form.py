"""Creating and editing a case: every field, messages next to fields, hashed identifiers, conflicts."""

from __future__ import annotations

import datetime as dt

import pytest

from casework import services
from casework.models import Case, CaseEdit, CaseIdentifier
from casework.screening import linkage_digest
from tests.factories import CaseFactory, InstitutionFactory, UserFactory

NEW = "/cases/new/"
EVERY_FIELD = (
    "sex", "birth_year", "oblast", "reported_on", "displaced_on", "displaced_precision", "source", "placement",
    "institution", "assigned_to", "risk_adoption", "risk_citizenship", "risk_military", "risk_medical", "notes",
    "identifier_register_number", "given_name", "family_name", "patronymic", "birth_date", "birth_place",
)  # fmt: skip


def valid(**overrides) -> dict[str, str]:
    data = {
        "sex": "F",
        "birth_year": "2012",
        "oblast": "UA-65",
        "reported_on": "2023-04-02",
        "displaced_on": "",
        "displaced_precision": "",
        "source": "family",
        "placement": "camp",
        "institution": "",
        "assigned_to": "",
        "notes": "",
    }
    data.update(overrides)
    return data


def edit_url(case) -> str:
    return f"/cases/{case.reference}/edit/"


def test_it_shows_every_field_of_a_case(client, caseworker):
    client.force_login(caseworker)
    response = client.get(NEW)
    assert response.status_code == 200
    for name in EVERY_FIELD:
        assert f'name="{name}"' in response.text, name
    assert 'name="version"' not in response.text
    assert response.context["form"]["assigned_to"].initial == caseworker.pk


def test_it_creates_a_case_with_every_field(client, caseworker, ngo_a):
    home = InstitutionFactory(code="crimea-42")
    colleague = UserFactory(username="colleague", organisation=ngo_a)
    client.force_login(caseworker)
    data = valid(
        displaced_on="2022-09-17",
        displaced_precision="month",
        institution="crimea-42",
        assigned_to=str(colleague.pk),
        risk_adoption="on",
        risk_medical="on",
        notes="Seen in a group photo of a camp.",
    )
    response = client.post(NEW, data)
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.reference}/"
    assert (case.sex, case.birth_year, case.oblast, case.reported_on) == ("F", 2012, "UA-65", dt.date(2023, 4, 2))
    assert (case.displaced_on, case.displaced_precision) == (dt.date(2022, 9, 1), "month")
    assert (case.source, case.placement, case.institution, case.assigned_to) == ("family", "camp", home, colleague)
    assert case.risk_adoption and case.risk_medical and not case.risk_military and not case.risk_citizenship
    assert case.organisation == ngo_a and case.status == "reported"
    assert f"Case {case.reference} created." in client.get(response["Location"]).text


def test_it_treats_a_deportation_date_without_precision_as_an_exact_day(client, caseworker):
    client.force_login(caseworker)
    client.post(NEW, valid(displaced_on="2022-09-17"))
    case = Case.objects.get()
    assert (case.displaced_on, case.displaced_precision) == (dt.date(2022, 9, 17), "day")


def test_it_hashes_identifiers_and_never_stores_or_shows_them(client, caseworker):
    client.force_login(caseworker)
    response = client.post(NEW, valid(identifier_register_number="I-АБ 123456"))
    assert response.status_code == 302
    case = Case.objects.get()
    digests = set(CaseIdentifier.objects.filter(case=case).values_list("kind", "digest"))
    assert digests == {("register_number", linkage_digest("I-АБ 123456", kind="register_number"))}
    page = client.get(response["Location"]).text
    assert "123456" not in page


def test_it_does_not_echo_identifiers_back_when_the_form_is_refused(client, caseworker):
    client.force_login(caseworker)
    data = valid(
        birth_year="1850",
        identifier_register_number="AB123456",
        given_name="Синтетична",
        family_name="Вигаданенко",
        birth_date="2012-03-04",
    )
    response = client.post(NEW, data)
    assert response.status_code == 400
    assert "AB123456" not in response.text and "Синтетична" not in response.text
    assert "Вигаданенко" not in response.text and "2012-03-04" not in response.text
    assert "The identifying details you typed were not kept" in response.text
    assert not CaseIdentifier.objects.exists()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2012-13-04", "There is no such month: check the date of birth."),
        ("2012-02-30", "There is no such day in that month: check the date of birth."),
        ("1985-02-03", "The date of birth is before 1990: a child of the register is younger."),
        ("4 March", "Give the date of birth as YYYY-MM-DD, or YYYY-MM when only the month is known."),
    ],
)
def test_it_says_what_is_wrong_with_a_date_of_birth_without_repeating_it(client, caseworker, typed, message):
    client.force_login(caseworker)
    response = client.post(NEW, valid(birth_date=typed))
    assert response.status_code == 400
    assert response.context["form"].errors["birth_date"] == [message]
    assert typed not in response.text
    assert not Case.objects.exists()


def test_a_name_needs_letters(client, caseworker):
    client.force_login(caseworker)
    response = client.post(NEW, valid(given_name="12345", family_name="  "))
    assert response.status_code == 400
    assert response.context["form"].errors["given_name"] == ["Letters only: this does not look like a name."]
    assert "family_name" not in response.context["form"].errors
    assert not Case.objects.exists()


def test_it_puts_the_services_messages_next_to_the_fields(client, caseworker):
    client.force_login(caseworker)
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    response = client.post(NEW, valid(birth_year="1950", reported_on=future, oblast=""))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["reported_on"] == ["The report date is in the future."]
    assert errors["oblast"] == ["This field is required."]
    assert 'id="id_reported_on_error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "The case was not saved" in response.text
    assert not Case.objects.exists()


def test_it_checks_the_birth_year_against_the_report(client, caseworker):
    client.force_login(caseworker)
    response = client.post(NEW, valid(birth_year="2024", reported_on="2023-04-02"))
    assert response.context["form"].errors["birth_year"] == [
        "The birth year must be between 1990 and the year of the report (2023)."
    ]


@pytest.mark.parametrize(
    ("notes", "what"),
    [("Mother's phone 067 123 4567", "a phone number"), ("Passport AB123456", "a document number")],
)
def test_it_shows_the_free_text_screens_message_next_to_the_notes(client, caseworker, notes, what):
    client.force_login(caseworker)
    response = client.post(NEW, valid(notes=notes))
    assert response.status_code == 400
    [message] = response.context["form"].errors["notes"]
    assert f"looks like {what}" in message
    assert not Case.objects.exists()


@pytest.mark.parametrize("role_fixture", ["org_admin", "analyst"])
def test_it_refuses_roles_that_may_not_create(client, request, role_fixture):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, valid()).status_code == 403
    assert not Case.objects.exists()


def test_it_lets_a_supervisor_create(client, supervisor):
    client.force_login(supervisor)
    assert client.post(NEW, valid()).status_code == 302


# --- editing ---------------------------------------------------------------------


def test_it_fills_the_edit_form_with_the_case_and_its_version(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, institution=InstitutionFactory(code="crimea-43"), risk_military=True)
    client.force_login(caseworker)
    response = client.get(edit_url(case))
    assert response.status_code == 200
    text = response.text
    assert 'name="version" value="1"' in text
    assert '<option value="crimea-43" selected>' in text
    assert 'name="risk_military" id="id_risk_military" checked' in text
    assert 'value="2023-01-10"' in text


def test_it_saves_an_edit_and_records_which_fields_changed(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, oblast="UA-14", reported_on=dt.date(2023, 1, 10))
    client.force_login(caseworker)
    response = client.post(edit_url(case), valid(oblast="UA-65", reported_on="2023-01-10", version="1"))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.oblast == "UA-65" and case.version == 2
    assert set(CaseEdit.objects.get(case=case).fields) >= {"oblast"}


def test_it_says_so_when_nothing_changed(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    client.force_login(caseworker)
    data = {key: value for key, value in client.get(edit_url(case)).context["form"].initial.items() if value}
    data["institution"] = ""
    response = client.post(edit_url(case), data, follow=True)
    assert "Nothing to save: no field was changed." in response.text
    assert not CaseEdit.objects.exists()


def test_it_adds_identifiers_to_an_existing_case(client, caseworker, case):
    client.force_login(caseworker)
    data = valid(reported_on="2023-01-10", version="1", identifier_register_number="R-000-SYNTHETIC")
    assert client.post(edit_url(case), data).status_code == 302
    assert CaseIdentifier.objects.filter(case=case, kind="register_number").count() == 1


def test_it_keeps_an_assignee_who_is_no_longer_a_caseworker(client, caseworker, ngo_a):
    former = UserFactory(username="former", organisation=ngo_a, role="analyst")
    case = CaseFactory(organisation=ngo_a, assigned_to=former)
    client.force_login(caseworker)
    assert f'<option value="{former.pk}" selected>' in client.get(edit_url(case)).text


def test_it_shows_a_conflict_and_never_overwrites_a_newer_version(client, caseworker, supervisor, ngo_a):
    case = CaseFactory(organisation=ngo_a, placement="camp", reported_on=dt.date(2023, 1, 10))
    client.force_login(caseworker)
    services.update_case(
        case=case, actor=services.Actor.for_user(supervisor), expected_version=1, values={"placement": "relatives"}
    )
    response = client.post(edit_url(case), valid(placement="institution", reported_on="2023-01-10", version="1"))
    assert response.status_code == 409
    text = response.text
    assert "This case changed since you opened it" in text and "Someone else" not in text
    assert "the form showed version 1, the case is now at version 2" in text
    assert "Placement edited by supervisor" in text
    assert "With relatives" in text and "Orphanage or institution" in text  # now, and what was not saved
    assert f'href="/cases/{case.reference}/"' in text and f'href="{edit_url(case)}"' in text
    case.refresh_from_db()
    assert case.placement == "relatives" and case.version == 2


def test_it_keeps_the_loaded_version_when_a_refused_form_is_shown_again(client, caseworker, case):
    client.force_login(caseworker)
    response = client.post(edit_url(case), valid(reported_on="2023-01-10", birth_year="1900", version="1"))
    assert response.status_code == 400
    assert 'name="version" value="1"' in response.text


def test_it_refuses_an_edit_without_a_version(client, caseworker, case):
    client.force_login(caseworker)
    response = client.post(edit_url(case), valid(reported_on="2023-01-10"))
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.version == 1


def test_it_answers_404_for_another_organisations_case(client, caseworker_b, case):
    client.force_login(caseworker_b)
    assert client.get(edit_url(case)).status_code == 404
    assert client.post(edit_url(case), valid(version="1")).status_code == 404


@pytest.mark.parametrize("role_fixture", ["org_admin", "analyst"])
def test_it_refuses_roles_that_may_not_edit(client, request, role_fixture, case):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(edit_url(case)).status_code == 403
    assert client.post(edit_url(case), valid(version="1")).status_code == 403
