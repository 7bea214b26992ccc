"""Sessions end when idle, after an absolute lifetime, and when the account is deactivated; passwords are Argon2."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client, override_settings

import config.settings as project_settings
from accounts.models import User
from accounts.sessions import LAST_SEEN_KEY, SESSION_STARTED_KEY
from tests.test_security_two_factor import PASSWORD, sign_in, signed_in_with_second_factor


def set_clock(client: Client, *, started_ago: float, last_seen_ago: float) -> None:
    session = client.session
    now = time.time()
    session[SESSION_STARTED_KEY] = int(now - started_ago)
    session[LAST_SEEN_KEY] = int(now - last_seen_ago)
    session.save()


def test_the_timeouts_are_30_idle_minutes_and_12_hours():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_ABSOLUTE_TIMEOUT == 12 * 3600


def test_a_session_survives_just_under_the_idle_timeout(client, caseworker):
    sign_in(client, "caseworker")
    set_clock(client, started_ago=3600, last_seen_ago=settings.SESSION_COOKIE_AGE - 60)
    assert client.get("/cases/").status_code == 200


def test_a_session_ends_after_the_idle_timeout(client, caseworker):
    sign_in(client, "caseworker")
    set_clock(client, started_ago=3600, last_seen_ago=settings.SESSION_COOKIE_AGE + 5)
    response = client.get("/cases/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/cases/"
    assert "_auth_user_id" not in client.session
    assert client.get("/cases/").status_code == 302


def test_a_session_ends_after_the_absolute_timeout_however_active(client, caseworker):
    sign_in(client, "caseworker")
    set_clock(client, started_ago=settings.SESSION_ABSOLUTE_TIMEOUT + 5, last_seen_ago=10)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_the_session_cookie_lasts_as_long_as_the_idle_timeout(client, caseworker):
    response = sign_in(client, "caseworker")
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_a_deactivated_users_session_ends_at_the_next_request(client, caseworker):
    sign_in(client, "caseworker")
    assert client.get("/cases/").status_code == 200
    User.objects.filter(pk=caseworker.pk).update(is_active=False)
    response = client.get("/cases/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Nor can they sign in again.
    assert sign_in(Client(), "caseworker").status_code == 200


@pytest.fixture
def admin_client(ngo_a) -> Client:
    admin = User.objects.create_superuser(username="admin", password=PASSWORD, organisation=ngo_a)
    return signed_in_with_second_factor(admin)


def sessions_of(user: User) -> int:
    return sum(session.get_decoded().get("_auth_user_id") == str(user.pk) for session in Session.objects.all())


def test_deactivating_in_the_admin_ends_every_session_at_once(admin_client, caseworker):
    laptop, phone = Client(), Client()
    sign_in(laptop, "caseworker")
    sign_in(phone, "caseworker")
    assert sessions_of(caseworker) == 2
    page = admin_client.get(f"/admin/accounts/user/{caseworker.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "organisation": caseworker.organisation_id,
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": caseworker.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": caseworker.date_joined.strftime("%H:%M:%S"),
            "groups": [],
            "user_permissions": [],
        }
    )
    data.pop("is_active")  # an unticked box
    response = admin_client.post(f"/admin/accounts/user/{caseworker.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    caseworker.refresh_from_db()
    assert not caseworker.is_active
    assert sessions_of(caseworker) == 0
    assert laptop.get("/").status_code == 302 and phone.get("/").status_code == 302


def test_the_admin_action_deactivates_and_signs_out(admin_client, caseworker, supervisor):
    sign_in(Client(), "caseworker")
    response = admin_client.post(
        "/admin/accounts/user/",
        {"action": "deactivate_and_sign_out", "_selected_action": [caseworker.pk]},
    )
    assert response.status_code == 302
    caseworker.refresh_from_db()
    supervisor.refresh_from_db()
    assert not caseworker.is_active and supervisor.is_active
    assert sessions_of(caseworker) == 0


def test_the_service_deactivates_several_users_but_never_the_actor(caseworker, supervisor, org_admin):
    from accounts.services import deactivate_users

    for name in ("caseworker", "supervisor"):
        sign_in(Client(), name)
    deactivated, ended = deactivate_users(users=[caseworker, supervisor, org_admin], by=org_admin)
    assert (deactivated, ended) == (2, 2)
    for user, active in ((caseworker, False), (supervisor, False), (org_admin, True)):
        user.refresh_from_db()
        assert user.is_active is active
    assert sessions_of(caseworker) == sessions_of(supervisor) == 0


# --- passwords (tests/conftest.py swaps in a fast hasher: these use the project's own list) ----------


def test_argon2_comes_first():
    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


@override_settings(PASSWORD_HASHERS=project_settings.PASSWORD_HASHERS)
def test_new_passwords_are_hashed_with_argon2():
    encoded = make_password("a long synthetic passphrase")
    assert identify_hasher(encoded).algorithm == "argon2"
    assert check_password("a long synthetic passphrase", encoded)


@override_settings(PASSWORD_HASHERS=project_settings.PASSWORD_HASHERS)
def test_an_older_hash_becomes_argon2_at_the_next_sign_in(client, caseworker):
    User.objects.filter(pk=caseworker.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    assert sign_in(client, "caseworker").status_code == 302
    caseworker.refresh_from_db()
    assert identify_hasher(caseworker.password).algorithm == "argon2"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Shrt-pass-1", "too short"),  # 11 characters
        ("qwerty123456", "too common"),
        ("845301927364", "entirely numeric"),
        ("caseworker-2024", "too similar"),
    ],
)
def test_weak_passwords_are_refused(caseworker, password, reason):
    with pytest.raises(ValidationError) as refused:
        validate_password(password, user=caseworker)
    assert reason in " ".join(refused.value.messages)


def test_a_long_uncommon_password_is_accepted(caseworker):
    validate_password("river-lantern-ochre-42", user=caseworker)
    minimum = {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}}
    assert minimum in settings.AUTH_PASSWORD_VALIDATORS
