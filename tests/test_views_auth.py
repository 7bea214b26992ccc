"""Sign in, sign out, the language switch, and pages refusing anonymous visitors."""

from __future__ import annotations

import pytest
from django.urls import reverse

PASSWORD = "correct-horse-battery-staple"  # set by tests.factories.UserFactory


def test_it_shows_the_sign_in_page(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'name="username"' in response.text and 'name="password"' in response.text
    assert "Content-Security-Policy" in response.headers


def test_it_signs_in_and_goes_home(client, caseworker):
    response = client.post("/accounts/login/", {"username": "caseworker", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_it_refuses_a_wrong_password_with_a_message(client, caseworker):
    response = client.post("/accounts/login/", {"username": "caseworker", "password": "wrong"})
    assert response.status_code == 200
    assert 'class="errorlist"' in response.text
    assert "_auth_user_id" not in client.session


def test_it_signs_out_with_a_post(client, caseworker):
    client.force_login(caseworker)
    response = client.post("/accounts/logout/")
    assert response.status_code == 200
    assert "You have signed out" in response.text
    assert client.get("/cases/").status_code == 302


def test_it_does_not_sign_out_with_a_get(client, caseworker):
    client.force_login(caseworker)
    assert client.get("/accounts/logout/").status_code == 405


@pytest.mark.parametrize(
    "url",
    ["/", "/cases/", "/cases/new/", "/cases/C-AAAA-AAAA/", "/cases/C-AAAA-AAAA/edit/", "/institutions/",
     "/institutions/crimea-01/"],
)  # fmt: skip
def test_it_sends_anonymous_visitors_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_switches_to_ukrainian_and_remembers_it(client, caseworker):
    client.force_login(caseworker)
    response = client.post("/i18n/setlang/", {"language": "uk", "next": "/cases/"})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    assert response.cookies["django_language"].value == "uk"
    page = client.get("/cases/")
    assert '<html lang="uk">' in page.text
    # Remembered across pages and after signing in again.
    client.post("/accounts/logout/")
    assert '<html lang="uk">' in client.get("/accounts/login/").text


def test_it_offers_both_languages_named_in_their_own_language(client, db):
    page = client.get("/accounts/login/").text
    assert 'value="uk"' in page and "Українська" in page
    assert 'value="en"' in page and "English" in page
