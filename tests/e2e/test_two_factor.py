"""A supervisor in a real browser: password, set-up of the authenticator app from the page, backup codes, sign-in again.

The page runs under the strict Content-Security-Policy: any violation fails the test (tests/e2e/conftest.py).
"""

from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp

from accounts import enrolment
from accounts.models import Role
from tests.e2e.conftest import CHROMIUM, PASSWORD
from tests.factories import OrganisationFactory, UserFactory

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM} (Debian's chromium)")


@pytest.fixture
def supervisor(transactional_db):
    ngo = OrganisationFactory(slug="ngo-a", name="NGO A (synthetic)")
    return UserFactory(username="supervisor", organisation=ngo, role=Role.SUPERVISOR)


def code_from_key(key: str, ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed by hand from the page."""
    secret = base64.b32decode(key.replace(" ", "").upper())
    return f"{totp(secret, drift=ahead):06d}"


def sign_in_with_password(page) -> None:
    page.goto(f"{page.base_url}/accounts/login/")
    page.get_by_label("Username").fill("supervisor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_a_supervisor_sets_up_two_factor_sign_in_and_uses_it(page, supervisor):
    code = enrolment.issue_enrolment_code(user=supervisor, by=None).code
    sign_in_with_password(page)
    page.wait_for_url(re.compile(r"/accounts/two-factor/setup/"))
    assert page.get_by_role("heading", name="Set up two-factor sign-in").is_visible()
    # The password alone shows no QR code: first the enrolment code from the organisation's admin.
    assert page.get_by_role("img", name="QR code to scan with your authenticator app").count() == 0
    page.get_by_label("Enrolment code").fill("WRONG-CODE-0000")
    page.get_by_role("button", name="Continue").click()
    assert "not right" in page.get_by_role("alert").first.inner_text()
    page.get_by_label("Enrolment code").fill(code.lower())
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("img", name="QR code to scan with your authenticator app").is_visible()
    key = page.locator("#setup-key").inner_text()

    # Other pages send the visitor back here until the second factor is passed.
    page.goto(f"{page.base_url}/cases/")
    page.wait_for_url(re.compile(r"/accounts/two-factor/setup/"))

    page.get_by_label("Code from the app").fill(code_from_key(key))
    page.get_by_role("button", name="Confirm and continue").click()
    page.wait_for_url(re.compile(r"/accounts/two-factor/backup-codes/"))
    codes = page.locator(".backup-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I have saved them: continue").click()
    page.wait_for_url(re.compile(r"/cases/$"))
    page.get_by_role("button", name="Sign out").click()

    # The next sign-in asks for a code: a backup code, typed in capitals, works.
    sign_in_with_password(page)
    page.wait_for_url(re.compile(r"/accounts/two-factor/\?next="))
    page.get_by_label("Code").fill("000000" if code_from_key(key, 1) != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    assert "not right" in page.get_by_role("alert").first.inner_text()
    assert page.get_by_label("Code").get_attribute("aria-invalid") == "true"
    page.get_by_label("Code").fill(codes[0].upper())
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{page.base_url}/")
    assert "backup code" in page.get_by_role("status").first.inner_text()
