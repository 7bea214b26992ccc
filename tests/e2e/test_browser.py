"""A caseworker in a real browser: sign in, create a case, record a return via Qatar; languages; scope."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Organisation, Role
from tests.e2e.conftest import CHROMIUM, PASSWORD
from tests.factories import CaseFactory, OrganisationFactory, UserFactory

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM} (Debian's chromium)")


@pytest.fixture
def people(transactional_db):
    ngo_a = OrganisationFactory(slug="ngo-a", name="NGO A (synthetic)")
    ngo_b = OrganisationFactory(slug="ngo-b", name="NGO B (synthetic)")
    # A transactional test empties the tables, the intermediaries of the data migration included.
    Organisation.objects.get_or_create(
        slug="qatar", defaults={"name": "State of Qatar", "kind": Organisation.Kind.INTERMEDIARY}
    )
    return {
        "ngo_a": ngo_a,
        "ngo_b": ngo_b,
        "caseworker": UserFactory(username="caseworker", organisation=ngo_a, role=Role.CASEWORKER),
        "caseworker_b": UserFactory(username="caseworker-b", organisation=ngo_b, role=Role.CASEWORKER),
    }


def sign_in(page, username: str) -> None:
    page.goto(f"{page.base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{page.base_url}/")


def test_a_caseworker_creates_a_case_and_records_a_return_via_qatar(page, people):
    sign_in(page, "caseworker")
    page.get_by_role("link", name="New case").first.click()

    page.get_by_label("Female").check()
    page.get_by_label("Birth year").fill("2012")
    page.get_by_label("Oblast of origin").select_option("UA-65")
    page.get_by_label("Report received on").fill("2023-04-02")
    page.get_by_label("Placement").select_option("camp")
    page.get_by_label("Military training or mobilisation risk").check()
    page.get_by_role("button", name="Create the case").click()

    page.wait_for_url(re.compile(r"/cases/C-[0-9A-Z]{4}-[0-9A-Z]{4}/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    assert "created" in page.get_by_role("status").first.inner_text()

    # Find it again by reference from the home page, typed in lower case.
    page.get_by_role("link", name="Home").click()
    page.get_by_label("Find a case by reference").fill(reference.lower())
    page.get_by_role("button", name="Find").click()
    assert page.locator(".result-count").inner_text().startswith("1 case ")
    page.get_by_role("link", name=reference).click()

    status_form = page.locator("form.status-form")
    # The intermediary field only shows for the moves it applies to.
    status_form.get_by_label("New status").select_option("located")
    assert not status_form.get_by_label("Via intermediary").is_visible()
    status_form.get_by_label("Date it happened").fill("2023-05-01")
    status_form.get_by_role("button", name="Record the change").click()
    page.wait_for_url(re.compile(r"#timeline$"))

    status_form = page.locator("form.status-form")
    status_form.get_by_label("New status").select_option("repatriated")
    status_form.get_by_label("Via intermediary").select_option("qatar")
    status_form.get_by_label("Date it happened").fill("2023-06-20")
    status_form.get_by_label("Note").fill("Returned with a group of children.")
    status_form.get_by_role("button", name="Record the change").click()
    page.wait_for_url(re.compile(r"#timeline$"))

    timeline = page.locator("#timeline")
    entries = timeline.locator("ol.timeline > li")
    assert entries.count() == 3  # the report, then the two changes
    last = entries.nth(2).inner_text()
    assert "Located → Repatriated" in " ".join(last.split())
    assert "Via State of Qatar" in last
    assert "Returned with a group of children." in last
    assert "Recorded by caseworker" in last
    assert "20 Jun 2023" in last
    assert "Repatriated" in page.locator("h1").inner_text()


def test_it_shows_a_refused_note_next_to_the_field(page, people):
    case = CaseFactory(organisation=people["ngo_a"], reported_on=dt.date(2023, 1, 10))
    sign_in(page, "caseworker")
    page.goto(f"{page.base_url}/cases/{case.reference}/")
    status_form = page.locator("form.status-form")
    status_form.get_by_label("New status").select_option("verified")
    status_form.get_by_label("Date it happened").fill("2023-02-01")
    status_form.get_by_label("Note").fill("Grandmother's number is 067 123 4567")
    status_form.get_by_role("button", name="Record the change").click()
    error = page.locator("#id_note_error")
    assert "looks like a phone number" in error.inner_text()
    assert page.get_by_label("Note").get_attribute("aria-invalid") == "true"


def test_it_switches_to_ukrainian_and_remembers_it(page, people):
    if not any((Path(path) / "uk" / "LC_MESSAGES" / "django.mo").exists() for path in settings.LOCALE_PATHS):
        pytest.skip("the Ukrainian translation is not compiled: run `make messages`")
    page.goto(f"{page.base_url}/accounts/login/")
    page.get_by_role("button", name="Українська").click()
    assert page.locator("html").get_attribute("lang") == "uk"
    assert page.get_by_role("heading", name="Увійти").is_visible()
    page.locator("#id_username").fill("caseworker")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Увійти").click()
    page.wait_for_url(f"{page.base_url}/")
    assert page.get_by_role("link", name="Справи").is_visible()
    assert page.get_by_role("button", name="Вийти").is_visible()
    page.get_by_role("link", name="Справи").click()
    assert page.get_by_label("Статус", exact=True).is_visible()
    # Remembered after signing out.
    page.get_by_role("button", name="Вийти").click()
    page.goto(f"{page.base_url}/accounts/login/")
    assert page.locator("html").get_attribute("lang") == "uk"


def test_a_caseworker_of_another_organisation_gets_a_404(page, people):
    case = CaseFactory(organisation=people["ngo_a"])
    sign_in(page, "caseworker-b")
    response = page.goto(f"{page.base_url}/cases/{case.reference}/")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    page.goto(f"{page.base_url}/cases/?q={case.reference}")
    assert page.locator(".result-count").inner_text().startswith("0 cases ")


def test_signing_in_works_with_the_keyboard_alone(page, people):
    page.goto(f"{page.base_url}/accounts/login/")
    for _press in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "id_username":
            break
    else:
        pytest.fail("the username field cannot be reached with the Tab key")
    page.keyboard.type("caseworker")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{page.base_url}/")
    # The first Tab on a page reaches the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
