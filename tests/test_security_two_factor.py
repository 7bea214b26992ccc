"""Two-factor sign-in: who is asked, set-up with a real TOTP code, backup codes, the admin, throttling.

Every test here signs in through the pages (never client.login/force_login), so the
second factor is really asked for.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from accounts import enrolment, sealing
from accounts.models import AuthenticatorApp, AuthEvent, Role, User
from accounts.two_factor import SECOND_FACTOR_PASSED_KEY
from config.admin import SecureAdminSite
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory's
VERIFY = "/accounts/two-factor/"
SETUP = "/accounts/two-factor/setup/"
CODES = "/accounts/two-factor/backup-codes/"


def sign_in(client: Client, username: str, password: str = PASSWORD, next_url: str = "", **extra):
    data = {"username": username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post("/accounts/login/", data, **extra)


def code_for(device: AuthenticatorApp, ahead: int = 0) -> str:
    """The app's code now (or `ahead` steps later: a code is accepted once, its successor still fits the window)."""
    device.refresh_from_db()
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift + ahead)
    return f"{value:0{device.digits}d}"


def enrol(client: Client, user: User) -> None:
    """Type an enrolment code an operator issued (the first factor is set up only with one)."""
    code = enrolment.issue_enrolment_code(user=user, by=None).code
    response = client.post(SETUP, {"enrolment_code": code})
    assert response.status_code == 302 and response["Location"].startswith(SETUP), response


def backup_digests(user: User) -> set[str]:
    return set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))


def digest(code: str) -> str:
    return sealing.code_digest(code, sealing.BACKUP_CODES)


def set_up_two_factor(client: Client, user: User) -> tuple[AuthenticatorApp, list[str]]:
    """Sign in with the password, type an enrolment code, set up the app with a code computed here, and read
    the backup codes shown."""
    assert sign_in(client, user.username).status_code == 302
    enrol(client, user)
    assert client.get(SETUP).status_code == 200
    device = AuthenticatorApp.objects.get(user=user, confirmed=False)
    response = client.post(SETUP, {"token": code_for(device)})
    assert response.status_code == 302 and response["Location"].startswith(CODES), response
    codes = client.get(response["Location"]).context["codes"]
    return AuthenticatorApp.objects.get(pk=device.pk), codes


def signed_in_with_second_factor(user: User) -> Client:
    """A fresh client that has really passed both steps (sets the app up first if the user has none)."""
    client = Client()
    device = AuthenticatorApp.objects.filter(user=user, confirmed=True).first()
    if device is None:
        set_up_two_factor(client, user)
        return client
    assert sign_in(client, user.username).status_code == 302
    assert client.post(VERIFY, {"token": code_for(device, ahead=1)}).status_code == 302
    return client


@pytest.fixture
def superuser(ngo_a) -> User:
    return User.objects.create_superuser(username="admin", password=PASSWORD, organisation=ngo_a)


def location(response) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(response["Location"])
    return parts.path, parse_qs(parts.query)


# --- who is asked --------------------------------------------------------------------------


def test_it_does_not_ask_a_caseworker_for_a_second_factor(client, caseworker):
    response = sign_in(client, "caseworker")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ORG_ADMIN])
def test_it_asks_supervisors_and_org_admins_for_a_second_factor(client, ngo_a, role):
    UserFactory(username="lead", organisation=ngo_a, role=role)
    response = sign_in(client, "lead")
    assert location(response) == (VERIFY, {"next": ["/"]})
    # No device yet: on to the set-up.
    assert location(client.get(VERIFY)) == (SETUP, {"next": ["/"]})


def test_it_asks_everyone_when_the_setting_says_so(client, caseworker, settings):
    settings.OTP_REQUIRED_FOR_ALL = True
    response = sign_in(client, "caseworker")
    assert location(response)[0] == VERIFY
    assert location(client.get("/cases/"))[0] == VERIFY


def test_it_asks_a_caseworker_who_has_set_one_up_anyway(caseworker):
    set_up_two_factor(Client(), caseworker)
    client = Client()
    assert location(sign_in(client, "caseworker"))[0] == VERIFY
    assert location(client.get("/"))[0] == VERIFY


def test_until_verified_only_the_two_factor_pages_and_sign_out_are_reachable(client, supervisor, case):
    sign_in(client, "supervisor")
    for url in [
        "/",
        "/cases/",
        f"/cases/{case.reference}/",
        "/figures/",
        "/institutions/",
        "/admin/",
        "/accounts/login/",
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert location(response) == (VERIFY, {"next": [url]}), url
    # A form posted before the second factor goes nowhere either.
    response = client.post(f"/cases/{case.reference}/status/", {"to_status": "verified"})
    assert location(response) == (VERIFY, {})
    assert client.get(SETUP).status_code == 200
    response = client.post("/i18n/setlang/", {"language": "uk", "next": SETUP})
    assert response.status_code == 302
    assert client.post("/accounts/logout/").status_code == 200
    assert "_auth_user_id" not in client.session


# --- set-up, verification, backup codes ---------------------------------------------------------


def test_it_sets_up_an_authenticator_app_with_a_qr_code_and_a_key(client, supervisor):
    sign_in(client, "supervisor")
    enrol(client, supervisor)
    page = client.get(SETUP)
    text = page.text
    device = AuthenticatorApp.objects.get(user=supervisor, confirmed=False)
    # An SVG drawn on the server, no image from elsewhere, and the key to type by hand.
    assert re.search(r'<svg class="qr-code" role="img" aria-label="[^"]+"', text)
    assert "<img" not in text and " style=" not in text
    key = page.context["key"].replace(" ", "")
    assert key and key in "".join(re.findall(r'<code class="ref" id="setup-key">([^<]+)</code>', text)).replace(" ", "")
    assert device.config_url.split("secret=")[1].startswith(key)
    # The page is never cached.
    assert "no-store" in page["Cache-Control"]

    wrong = client.post(SETUP, {"token": "000000" if code_for(device) != "000000" else "111111"})
    assert wrong.status_code == 200
    assert "not right" in wrong.text and 'aria-invalid="true"' in wrong.text
    assert not AuthenticatorApp.objects.get(pk=device.pk).confirmed

    device.throttle_reset()
    response = client.post(SETUP, {"token": code_for(device)})
    assert location(response) == (CODES, {"next": ["/"]})
    assert AuthenticatorApp.objects.get(pk=device.pk).confirmed
    # The backup codes are shown once, then never again.
    codes = client.get(CODES).context["codes"]
    assert len(codes) == settings.OTP_BACKUP_CODES == len(set(codes))
    # Only keyed hashes are kept.
    assert backup_digests(supervisor) == {digest(code) for code in codes}
    assert not backup_digests(supervisor) & set(codes)
    again = client.get(CODES)
    assert again.context["codes"] is None and codes[0] not in again.text
    assert client.get("/").status_code == 200
    assert AuthEvent.objects.filter(user=supervisor, kind=AuthEvent.Kind.OTP_SET_UP).exists()


def test_it_verifies_a_code_from_the_app_at_the_next_sign_in(supervisor):
    device, _codes = set_up_two_factor(Client(), supervisor)
    client = Client()
    response = sign_in(client, "supervisor", next_url="/cases/")
    assert location(response) == (VERIFY, {"next": ["/cases/"]})
    before = client.session.session_key
    response = client.post(VERIFY, {"token": code_for(device, ahead=1), "next": "/cases/"})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    # A new session key for the verified session.
    assert client.session.session_key != before
    assert client.session[SECOND_FACTOR_PASSED_KEY] == str(supervisor.pk)
    assert client.get("/cases/").status_code == 200
    assert AuthEvent.objects.filter(user=supervisor, kind=AuthEvent.Kind.OTP_VERIFIED).count() == 2


def test_a_code_is_accepted_once(supervisor):
    device, _codes = set_up_two_factor(Client(), supervisor)
    code = code_for(device, ahead=1)
    first, second = Client(), Client()
    sign_in(first, "supervisor")
    assert first.post(VERIFY, {"token": code}).status_code == 302
    sign_in(second, "supervisor")
    replay = second.post(VERIFY, {"token": code})
    assert replay.status_code == 200 and "already been used" in replay.text


def test_a_backup_code_works_once(supervisor):
    _device, codes = set_up_two_factor(Client(), supervisor)
    client = Client()
    sign_in(client, "supervisor")
    # Typed as people copy it: upper case, with a space.
    typed = f"{codes[0][:4].upper()} {codes[0][4:].upper()}"
    response = client.post(VERIFY, {"token": typed})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert StaticToken.objects.filter(device__user=supervisor).count() == len(codes) - 1

    other = Client()
    sign_in(other, "supervisor")
    refused = other.post(VERIFY, {"token": codes[0]})
    assert refused.status_code == 200 and "errorlist" in refused.text
    assert location(other.get("/"))[0] == VERIFY


def test_new_backup_codes_replace_the_old_ones(supervisor):
    client = Client()
    _device, old = set_up_two_factor(client, supervisor)
    assert client.get(CODES).context["remaining"] == len(old)
    response = client.post(CODES)
    assert response.status_code == 302
    new = client.get(response["Location"]).context["codes"]
    assert len(new) == len(old) and not set(new) & set(old)
    assert backup_digests(supervisor) == {digest(code) for code in new}


def test_someone_with_a_device_cannot_add_another_before_verifying(supervisor):
    set_up_two_factor(Client(), supervisor)
    client = Client()
    sign_in(client, "supervisor")
    assert location(client.get(SETUP))[0] == VERIFY
    assert location(client.post(SETUP, {"token": "123456"}))[0] == VERIFY
    assert location(client.post(CODES))[0] == VERIFY
    assert AuthenticatorApp.objects.filter(user=supervisor).count() == 1


def test_someone_with_backup_codes_only_uses_one_before_setting_up_a_new_app(supervisor):
    device, codes = set_up_two_factor(Client(), supervisor)
    device.delete()  # the phone was lost: an admin removed the app
    client = Client()
    sign_in(client, "supervisor")
    assert client.get(VERIFY).status_code == 200
    assert location(client.get(SETUP))[0] == VERIFY
    assert client.post(VERIFY, {"token": codes[1]}).status_code == 302
    assert client.get(SETUP).status_code == 200


def test_it_never_follows_a_next_address_elsewhere(supervisor):
    device, _codes = set_up_two_factor(Client(), supervisor)
    client = Client()
    sign_in(client, "supervisor")
    response = client.post(VERIFY, {"token": code_for(device, ahead=1), "next": "https://elsewhere.example/"})
    assert response["Location"] == "/"


def test_removing_a_device_ends_the_sessions_it_verified(supervisor):
    client = signed_in_with_second_factor(supervisor)
    assert client.get("/").status_code == 200
    AuthenticatorApp.objects.filter(user=supervisor).delete()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- throttling and lockout of codes --------------------------------------------------------------


def test_wrong_codes_are_throttled_and_count_towards_the_lockout(supervisor, settings):
    device, _codes = set_up_two_factor(Client(), supervisor)
    client = Client()
    sign_in(client, "supervisor")
    good = code_for(device, ahead=1)
    bad = "000000" if good != "000000" else "111111"
    assert "not right" in client.post(VERIFY, {"token": bad}).text
    # Straight after a wrong code, even the right one is not checked.
    throttled = client.post(VERIFY, {"token": good})
    assert throttled.status_code == 200 and "Too many wrong codes" in throttled.text
    assert AuthenticatorApp.objects.get(pk=device.pk).throttling_failure_count == 1
    # Every refused code counts as a failed sign-in: at the limit, the session ends and the account locks.
    response = None
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 2):
        response = client.post(VERIFY, {"token": bad})
    assert response is not None and response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuthEvent.objects.filter(user=supervisor, kind=AuthEvent.Kind.OTP_FAILED).count() == (
        settings.AXES_FAILURE_LIMIT
    )
    assert AuthEvent.objects.filter(username="supervisor", kind=AuthEvent.Kind.LOCKED_OUT).exists()
    assert sign_in(Client(), "supervisor").status_code == 429


# --- the admin --------------------------------------------------------------------------------------


def test_the_admin_refuses_a_session_without_the_second_factor(superuser):
    client = Client()
    sign_in(client, "admin", next_url="/admin/")
    response = client.get("/admin/")
    assert location(response) == (VERIFY, {"next": ["/admin/"]})
    response = client.get("/admin/casework/case/")
    assert response.status_code == 302 and location(response)[0] == VERIFY


def test_the_admin_site_itself_refuses_an_unverified_session(superuser):
    """Even without the middleware, the admin site checks the second factor."""
    request = RequestFactory().get("/admin/")
    request.user = superuser
    request.session = Client().session
    site = SecureAdminSite()
    assert not site.has_permission(request)
    request.session[SECOND_FACTOR_PASSED_KEY] = str(superuser.pk)
    assert site.has_permission(request)


def test_the_admin_opens_after_the_second_factor(superuser):
    client = signed_in_with_second_factor(superuser)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/casework/case/").status_code == 200
    # The admin never shows a device's secret.
    device = AuthenticatorApp.objects.get(user=superuser)
    page = client.get(f"/admin/accounts/authenticatorapp/{device.pk}/change/")
    assert page.status_code == 200 and device.key not in page.text and device.bin_key.hex() not in page.text
    # django-otp's own admin pages are not there: everything goes through the sealed classes.
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 404


def test_the_admin_has_no_password_form_of_its_own(client, db):
    response = client.get("/admin/login/?next=/admin/casework/case/")
    assert location(response) == ("/accounts/login/", {"next": ["/admin/casework/case/"]})
    response = client.get("/admin/")
    assert response.status_code == 302
    assert location(client.get(response["Location"]))[0] == "/accounts/login/"
    assert client.post("/admin/login/", {"username": "x", "password": "y"}).status_code == 302


def test_the_admin_refuses_a_signed_in_person_who_is_not_staff(client, caseworker):
    sign_in(client, "caseworker")
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert AuthEvent.objects.filter(user=caseworker, kind=AuthEvent.Kind.PERMISSION_DENIED).exists()


# --- the pages -----------------------------------------------------------------------------------------

TEMPLATES = sorted((Path(settings.BASE_DIR) / "templates" / "two_factor").glob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_the_two_factor_templates_have_no_inline_code_and_translate_every_string(template):
    text = template.read_text(encoding="utf-8")
    assert "<style" not in text and not re.search(r"<script|\sstyle=|\son[a-z]+=", text)
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", "", text, flags=re.S)
    text = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "", text, flags=re.S)
    for _attribute, value in re.findall(r'\s(aria-label|placeholder|title|alt)="([^"]*)"', text):
        assert not re.search(r"[A-Za-z]", value), value
    text = re.sub(r"<[^>]+>", " ", text)
    assert [word for word in text.split() if re.search(r"[A-Za-z]", word)] == []


def test_the_code_field_is_labelled_and_described(client, supervisor):
    set_up_two_factor(Client(), supervisor)
    sign_in(client, "supervisor")
    text = client.post(VERIFY, {"token": "nonsense"}).text
    [field] = re.findall(r"<input[^>]*name=\"token\"[^>]*>", text)
    assert 'id="id_token"' in field and 'autocomplete="one-time-code"' in field
    assert 'aria-describedby="id_token_helptext id_token_error"' in field and 'aria-invalid="true"' in field
    assert '<label for="id_token">' in text and 'id="id_token_helptext"' in text and 'id="id_token_error"' in text


def test_a_session_row_holds_no_code(supervisor):
    client = Client()
    set_up_two_factor(client, supervisor)
    for session in Session.objects.all():
        data = session.get_decoded()
        assert "second_factor_fresh_codes" not in data
        assert not any(isinstance(value, str) and re.fullmatch(r"\d{6}", value) for value in data.values())
    assert StaticDevice.objects.filter(user=supervisor, confirmed=True).count() == 1
