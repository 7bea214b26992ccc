"""Security headers on every kind of page, no caching of case data, and `check --deploy` clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import path

import config.urls
from accounts.models import User
from tests.api_helpers import auth, make_token, share
from tests.factories import CaseFactory, InstitutionFactory
from tests.test_security_two_factor import PASSWORD, sign_in, signed_in_with_second_factor

# The variables the register reads: a subprocess gets only those the test sets.
OWN_VARIABLES = ("DJANGO_", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL")
ROOT = Path(__file__).resolve().parent.parent
ALLOWED_SOURCES = {"'self'", "'none'", "data:"}


def boom(request):
    raise RuntimeError("a deliberate server error (test)")


# This module doubles as a URL configuration with a page that fails, for the 500 page.
urlpatterns = [path("boom/", boom), *config.urls.urlpatterns]


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = [part.strip().split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def permissions_of(response) -> dict[str, str]:
    header = response.headers.get("Permissions-Policy", "")
    return dict(part.strip().split("=", 1) for part in header.split(",") if part.strip())


def assert_no_powerful_features(response, label: str) -> None:
    permissions = permissions_of(response)
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "serial", "hid", "display-capture"):
        assert permissions.get(feature) == "()", (label, feature, permissions.get(feature))
    # Only the copy button of a secret shown once writes to the clipboard, and only this origin.
    allowed = {feature: origins for feature, origins in permissions.items() if origins != "()"}
    assert allowed == {"clipboard-write": "(self)"}, (label, allowed)


def assert_secure_headers(response, label: str) -> None:
    assert_no_powerful_features(response, label)
    policy = policy_of(response)
    assert policy, f"{label}: no Content-Security-Policy"
    for directive in ("default-src", "script-src", "style-src", "object-src", "base-uri", "frame-ancestors"):
        assert directive in policy, (label, directive)
    for directive, sources in policy.items():
        for source in sources:
            # No 'unsafe-inline' / 'unsafe-eval', no wildcard, no other origin.
            assert source in ALLOWED_SOURCES, (label, directive, source)
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"], label
    assert response.headers.get("X-Frame-Options") == "DENY", label
    assert response.headers.get("Referrer-Policy") == "same-origin", label
    assert response.headers.get("X-Content-Type-Options") == "nosniff", label


@pytest.fixture
def world(ngo_a, caseworker, analyst):
    case = CaseFactory(organisation=ngo_a)
    InstitutionFactory(code="crimea-01")
    return {"case": case}


def test_every_kind_of_page_sends_the_strict_headers(world, caseworker, analyst, ngo_a, supervisor):
    anonymous = Client()
    worker = Client()
    sign_in(worker, "caseworker")
    figures = Client()
    sign_in(figures, "analyst")
    admin = signed_in_with_second_factor(
        User.objects.create_superuser(username="admin", password=PASSWORD, organisation=ngo_a)
    )
    halfway = Client()
    sign_in(halfway, "supervisor")
    reference = world["case"].reference
    pages = [
        ("login", anonymous, "/accounts/login/", 200),
        ("home", worker, "/", 200),
        ("case list", worker, "/cases/", 200),
        ("case page", worker, f"/cases/{reference}/", 200),
        ("case form", worker, f"/cases/{reference}/edit/", 200),
        ("new case form", worker, "/cases/new/", 200),
        ("institutions", worker, "/institutions/", 200),
        ("figures", figures, "/figures/", 200),
        ("admin", admin, "/admin/", 200),
        ("admin list", admin, "/admin/casework/case/", 200),
        ("admin form", admin, f"/admin/casework/case/{world['case'].pk}/change/", 200),
        ("API docs", anonymous, "/api/v1/docs/", 200),
        ("API schema", anonymous, "/api/v1/schema/", 200),
        ("not found", worker, "/cases/C-0000-0000/", 404),
        ("refused", figures, "/cases/", 403),
        ("two-factor set-up", halfway, "/accounts/two-factor/setup/", 200),
        ("signed out", worker, "/accounts/logout/", 405),
    ]
    for label, client, url, status in pages:
        response = client.get(url)
        assert response.status_code == status, (label, url, response.status_code)
        assert_secure_headers(response, label)


@pytest.mark.urls(__name__)
def test_the_server_error_page_sends_the_strict_headers(db):
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    assert_secure_headers(response, "server error")


def test_the_lockout_page_sends_the_strict_headers(caseworker):
    response = None
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = sign_in(Client(), "caseworker", password="wrong")
    assert response is not None and response.status_code == 429
    assert_secure_headers(response, "lockout")


def test_static_files_and_the_api_deny_the_powerful_browser_features_too(world, qatar, settings):
    # WhiteNoise serves the file itself, as in the demo (no collectstatic in the tests).
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
    share(world["case"], qatar)
    _token, plain = make_token(qatar)
    client = Client()
    responses = {
        "static file": client.get("/static/css/app.css"),
        "API item": client.get(
            f"/api/v1/cases/{world['case'].reference}/", headers={"Authorization": auth(plain)["HTTP_AUTHORIZATION"]}
        ),
        "API refusal": client.get("/api/v1/cases/"),
        "sign-in redirect": client.get("/cases/"),
    }
    assert [response.status_code for response in responses.values()] == [200, 200, 401, 302]
    for label, response in responses.items():
        assert_no_powerful_features(response, label)


def test_case_pages_are_never_cached(world, caseworker):
    client = Client()
    sign_in(client, "caseworker")
    reference = world["case"].reference
    for url in ["/", "/cases/", f"/cases/{reference}/", f"/cases/{reference}/edit/"]:
        cache_control = client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url


def test_case_api_responses_are_never_cached(world, qatar):
    share(world["case"], qatar)
    _token, plain = make_token(qatar)
    client = Client()
    for url in ["/api/v1/cases/", f"/api/v1/cases/{world['case'].reference}/"]:
        response = client.get(url, headers={"Authorization": auth(plain)["HTTP_AUTHORIZATION"]})
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


def test_the_deployment_checks_pass_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARIABLES)}
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="a-long-random-secret-key-for-the-deploy-check-0123456789abcdef",
        DJANGO_SECOND_FACTOR_KEYS="another-long-random-key-for-the-deploy-check-9876543210",
        DJANGO_LINKAGE_KEY="a-third-long-random-key-for-the-deploy-check-5678901234",
        DJANGO_ALLOWED_HOSTS="register.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
