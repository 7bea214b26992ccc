"""What a Ukrainian caseworker reads: dates, names the register owns, option lists, the admin's headings.

English pages write dates as 15 Jan 2025, Ukrainian ones as 15.01.2025; files,
inputs and the API keep ISO 8601. Names the register owns (intermediaries,
oblasts, institutions, the admin's sections) read in Ukrainian on Ukrainian
pages, and option lists are in each language's alphabetical order.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import Organisation, User
from casework import services
from casework.collation import alphabetical, collation_key
from casework.forms import CaseFilter, CaseForm
from casework.models import Case, Oblast
from tests.factories import CaseFactory, InstitutionFactory

UK = {"HTTP_ACCEPT_LANGUAGE": "uk"}


@pytest.fixture
def qatar_named(qatar: Organisation) -> Organisation:
    qatar.name_uk = "Держава Катар"
    qatar.save(update_fields=["name_uk"])
    return qatar


@pytest.fixture
def returned_case(ngo_a, caseworker, qatar_named) -> Case:
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2025, 1, 15), oblast="UA-23")
    services.change_status(
        case=case,
        actor=services.Actor.for_user(caseworker),
        to_status="repatriated",
        occurred_on=dt.date(2025, 3, 4),
        expected_version=1,
        via=qatar_named,
    )
    return case


def test_dates_read_15_jan_2025_in_english_and_15_01_2025_in_ukrainian(client, caseworker, returned_case):
    client.force_login(caseworker)
    english = client.get(f"/cases/{returned_case.reference}/").text
    assert "15 Jan 2025" in english and "4 Mar 2025" in english
    assert "Jan. 15" not in english and "2025-01-15</" not in english
    ukrainian = client.get(f"/cases/{returned_case.reference}/", **UK).text
    assert "15.01.2025" in ukrainian and "04.03.2025" in ukrainian
    # Machine-readable dates stay ISO.
    assert 'datetime="2025-01-15"' in ukrainian


def test_a_refusal_names_the_date_in_the_pages_format(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2025, 1, 15))
    for language, expected in (("en", "(15 Jan 2025)"), ("uk", "(15.01.2025)")):
        with translation.override(language), pytest.raises(services.ValidationError) as refused:
            services.change_status(
                case=case,
                actor=services.Actor.for_user(caseworker),
                to_status="verified",
                occurred_on=dt.date(2025, 1, 2),
                expected_version=1,
            )
        assert expected in str(refused.value)


def test_the_intermediary_and_the_oblast_read_in_ukrainian(client, caseworker, returned_case):
    client.force_login(caseworker)
    english = client.get(f"/cases/{returned_case.reference}/").text
    assert "Via State of Qatar" in english and "Zaporizhzhia oblast" in english
    ukrainian = client.get(f"/cases/{returned_case.reference}/", **UK).text
    assert "Держава Катар" in ukrainian and "State of Qatar" not in ukrainian
    assert "Запорізька область" in ukrainian


def test_an_institution_with_a_ukrainian_name_shows_it_on_ukrainian_pages(client, caseworker, ngo_a):
    institution = InstitutionFactory(code="crimea-90", name="Childrens home No. 90 (synthetic)")
    institution.name_uk = "Дитячий будинок № 90 (синтетичний)"
    institution.save()
    client.force_login(caseworker)
    assert "Дитячий будинок № 90 (синтетичний)" in client.get("/institutions/", **UK).text
    assert "Childrens home No. 90 (synthetic)" in client.get("/institutions/").text


def test_the_ukrainian_alphabet_orders_oblasts_ґ_є_і_ї_in_place():
    assert collation_key("Ірпінь") < collation_key("Їжакевич") < collation_key("Йосипівка") < collation_key("Київ")
    assert collation_key("Гадяч") < collation_key("Ґорґани") < collation_key("Дубно")
    assert collation_key("Житомир") < collation_key("Івано-Франківськ") < collation_key("Київ")
    assert [label for _code, label in alphabetical([("b", "Бар"), ("a", "Єнакієве"), ("c", "Ярмолинці")])] == [
        "Бар",
        "Єнакієве",
        "Ярмолинці",
    ]


@pytest.mark.parametrize("language", ["en", "uk"])
def test_oblast_options_are_alphabetical_in_each_language(language, caseworker):
    with translation.override(language):
        for field in (
            CaseFilter({}, queryset=Case.objects.none()).form.fields["oblast"],
            CaseForm(actor=services.Actor.for_user(caseworker)).fields["oblast"],
        ):
            labels = [str(label) for value, label in field.choices if value]
            assert len(labels) == len(Oblast.values)
            assert labels == sorted(labels, key=collation_key), labels[:5]
    if language == "en":
        assert labels[0] == "Autonomous Republic of Crimea" and labels[-1] == "Zhytomyr oblast"
    else:
        assert labels[0] == "Автономна Республіка Крим" and labels[-1] == "Чернігівська область"


def test_the_admin_sections_read_in_ukrainian(client, ngo_a):
    admin = User.objects.create_superuser(username="admin", password="admin-password-long", organisation=ngo_a)
    client.force_login(admin)
    page = client.get(reverse("admin:index"), **UK).text
    for heading in ("Застосунки автентифікації", "Резервні коди", "Блокування входу"):
        assert heading in page
    for raw in ("OTP_TOTP", "OTP_STATIC", "Otp_Totp", ">Axes<"):
        assert raw not in page


def test_the_admin_names_the_assigned_caseworker_and_offers_only_the_organisations_people(
    client, ngo_a, ngo_b, caseworker
):
    admin = User.objects.create_superuser(username="admin", password="admin-password-long", organisation=ngo_a)
    stranger = User.objects.create_user(username="other-ngo-worker", organisation=ngo_b, password="x-long-password-1")
    case = CaseFactory(organisation=ngo_a, assigned_to=caseworker)
    client.force_login(admin)
    page = client.get(reverse("admin:casework_case_change", args=[case.pk])).text
    assigned = re.search(r'<select name="assigned_to"[^>]*>(.*?)</select>', page, re.DOTALL)
    assert assigned is not None, "the assignee is a list of people, not a raw id"
    assert f'value="{caseworker.pk}" selected>caseworker<' in assigned.group(1)
    assert stranger.username in assigned.group(1)  # a superuser may assign anyone
    assert 'id="id_assigned_to"' in page and "vForeignKeyRawIdAdminField" not in page
