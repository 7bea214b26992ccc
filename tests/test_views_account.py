"""The account page: password change, the second factor (apps, backup codes), language; a user's own only."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.test import Client
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuthEvent, Role
from tests.factories import UserFactory
from tests.test_security_two_factor import PASSWORD, set_up_two_factor, sign_in, signed_in_with_second_factor

URL = "/accounts/"
NEW_PASSWORD = "a-new-and-long-synthetic-passphrase-42"


def test_it_shows_who_the_user_is_their_second_factor_and_the_language(client, caseworker):
    client.force_login(caseworker)
    response = client.get(URL)
    assert response.status_code == 200
    text = response.text
    assert "caseworker" in text and "Caseworker" in text and "NGO A (synthetic)" in text
    assert 'href="/accounts/password/"' in text
    assert "None yet." in text and 'href="/accounts/two-factor/setup/?next=/accounts/"' in text
    assert 'name="language"' in text and 'action="/i18n/setlang/"' in text


def test_every_page_links_to_the_account_page(client, caseworker):
    client.force_login(caseworker)
    assert 'href="/accounts/"' in client.get("/").text


def test_it_needs_a_signed_in_user(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_changes_the_password_keeps_this_session_and_ends_the_others(caseworker):
    other_place = Client()
    other_place.force_login(caseworker)
    client = Client()
    client.force_login(caseworker)
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == URL
    caseworker.refresh_from_db()
    assert caseworker.check_password(NEW_PASSWORD)
    assert client.get("/").status_code == 200  # still signed in here
    assert other_place.get("/").status_code == 302  # signed out there
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.PASSWORD_CHANGED, user=caseworker).count() == 1


def test_it_refuses_a_wrong_current_password_and_changes_nothing(client, caseworker):
    client.force_login(caseworker)
    response = client.post(
        "/accounts/password/",
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert "old password was entered incorrectly" in response.text
    caseworker.refresh_from_db()
    assert caseworker.check_password(PASSWORD)
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.PASSWORD_CHANGED).exists()


def test_a_supervisor_keeps_the_second_factor_after_changing_the_password(ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    client = signed_in_with_second_factor(supervisor)
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/cases/").status_code == 200  # not sent back to the code page


def test_it_lists_the_app_and_the_backup_codes_and_removes_the_app_with_the_password(ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    client = Client()
    device, codes = set_up_two_factor(client, supervisor)
    elsewhere = signed_in_with_second_factor(supervisor)
    page = client.get(URL).text
    assert f"You have {len(codes)} unused backup codes." in page
    assert f'action="/accounts/two-factor/apps/{device.pk}/remove/"' in page

    asked = client.post(f"/accounts/two-factor/apps/{device.pk}/remove/")
    assert asked.status_code == 200 and "Remove the authenticator app?" in asked.text
    wrong = client.post(f"/accounts/two-factor/apps/{device.pk}/remove/", {"confirmed": "1", "password": "nope"})
    assert wrong.status_code == 400 and "That is not your password." in wrong.text
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    done = client.post(f"/accounts/two-factor/apps/{device.pk}/remove/", {"confirmed": "1", "password": PASSWORD})
    assert done.status_code == 302 and done["Location"] == URL
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert client.get("/cases/").status_code == 200  # this session stays
    assert elsewhere.get("/cases/").status_code == 302  # the other one ended
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.OTP_DEVICE_REMOVED, user=supervisor).count() == 1


def test_it_keeps_the_only_second_factor_of_a_role_that_needs_one(ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    client = Client()
    device, _codes = set_up_two_factor(client, supervisor)
    StaticToken.objects.filter(device__user=supervisor).delete()
    response = client.post(f"/accounts/two-factor/apps/{device.pk}/remove/", {"confirmed": "1", "password": PASSWORD})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    assert "only second factor" in client.get(URL).text


def test_another_users_app_is_absent(client, caseworker, ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    device, _codes = set_up_two_factor(Client(), supervisor)
    client.force_login(caseworker)
    response = client.post(f"/accounts/two-factor/apps/{device.pk}/remove/", {"confirmed": "1", "password": PASSWORD})
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_the_account_page_waits_for_the_second_factor(ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    set_up_two_factor(Client(), supervisor)
    client = Client()
    assert sign_in(client, "sup").status_code == 302
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/")
    assert Session.objects.exists()


def test_after_a_backup_code_the_message_links_to_making_new_ones(ngo_a):
    supervisor = UserFactory(username="sup", organisation=ngo_a, role=Role.SUPERVISOR)
    _device, codes = set_up_two_factor(Client(), supervisor)
    client = Client()
    assert sign_in(client, "sup").status_code == 302
    response = client.post("/accounts/two-factor/", {"token": codes[0]}, follow=True)
    assert f"{len(codes) - 1} are left" in response.text
    assert 'href="/accounts/two-factor/backup-codes/?next=%2Faccounts%2F"' in response.text
