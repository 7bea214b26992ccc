from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from typing import Any

import django.test.utils
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Organisation, Role, User
from casework.models import Case
from tests.factories import CaseFactory, OrganisationFactory, UserFactory


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL: set DATABASE_URL (CI does)",
)
requires_two_roles = pytest.mark.skipif(
    not (
        os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) and settings.DATABASE_APP_ROLE
    ),
    reason="needs PostgreSQL with two roles: set MIGRATION_DATABASE_URL to the owner's (CI does)",
)


def _as_owner_while(function: Callable[..., Any]) -> Callable[..., Any]:
    """Create, migrate and drop the test database as the tables' owner; the tests then run as the application."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from accounts.management.commands.migrate import as_owner

        with as_owner():
            return function(*args, **kwargs)

    return wrapper


def _stop_the_run_when_no_test_database(function: Callable[..., Any]) -> Callable[..., Any]:
    """Django's runner leaves with sys.exit() when it cannot create the test database; pytest then
    reports every later database test as an internal error of its own. Stop the run once, saying why."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SystemExit as stop:
            pytest.exit(
                "The test database could not be created (Django's message is just above). A test database left "
                "by an earlier run and owned by another role is the usual cause: drop it, as .ci/run does.",
                returncode=stop.code if isinstance(stop.code, int) else 2,
            )

    return wrapper


if settings.MIGRATION_DATABASE:
    django.test.utils.setup_databases = _as_owner_while(django.test.utils.setup_databases)
    django.test.utils.teardown_databases = _as_owner_while(django.test.utils.teardown_databases)
django.test.utils.setup_databases = _stop_the_run_when_no_test_database(django.test.utils.setup_databases)


@pytest.fixture
def ngo_a(db: None) -> Organisation:
    return OrganisationFactory(slug="ngo-a", name="NGO A (synthetic)")


@pytest.fixture
def ngo_b(db: None) -> Organisation:
    return OrganisationFactory(slug="ngo-b", name="NGO B (synthetic)")


@pytest.fixture
def qatar(db: None) -> Organisation:
    return Organisation.objects.get(slug="qatar")


@pytest.fixture
def caseworker(ngo_a: Organisation) -> User:
    return UserFactory(username="caseworker", organisation=ngo_a, role=Role.CASEWORKER)


@pytest.fixture
def supervisor(ngo_a: Organisation) -> User:
    return UserFactory(username="supervisor", organisation=ngo_a, role=Role.SUPERVISOR)


@pytest.fixture
def analyst(ngo_a: Organisation) -> User:
    return UserFactory(username="analyst", organisation=ngo_a, role=Role.ANALYST)


@pytest.fixture
def org_admin(ngo_a: Organisation) -> User:
    return UserFactory(username="orgadmin", organisation=ngo_a, role=Role.ORG_ADMIN)


@pytest.fixture
def caseworker_b(ngo_b: Organisation) -> User:
    return UserFactory(username="caseworker-b", organisation=ngo_b, role=Role.CASEWORKER)


@pytest.fixture
def case(ngo_a: Organisation) -> Case:
    return CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # Real hashers are deliberately slow; tests check behaviour, not hashing cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_storage(settings) -> None:
    # Tests speak plain HTTP to the test client and the live server.
    settings.SECURE_SSL_REDIRECT = False
    # Production uses the hashed manifest built by collectstatic; tests don't build it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- two-factor sign-in (accounts.two_factor) ---------------------------------------------------


@pytest.fixture(autouse=True)
def _signed_in_sessions_have_passed_the_second_factor(monkeypatch):
    """client.login() and client.force_login() stand for a whole sign-in, second factor included.

    The two-factor flow itself is tested through the sign-in pages (tests/test_security_*.py),
    which this does not touch.
    """
    from django.test.client import ClientMixin

    from accounts.two_factor import mark_second_factor_passed

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        session = self.session
        mark_second_factor_passed(session, user)
        session.save()

    monkeypatch.setattr(ClientMixin, "_login", _login)


INTERMEDIARIES = [
    ("qatar", "State of Qatar"),
    ("vatican", "Holy See (Vatican)"),
    ("south-africa", "Republic of South Africa"),
    ("icrc", "International Committee of the Red Cross"),
]


def ensure_intermediaries() -> None:
    for slug, name in INTERMEDIARIES:
        Organisation.objects.get_or_create(slug=slug, defaults={"name": name, "kind": Organisation.Kind.INTERMEDIARY})


@pytest.fixture(autouse=True)
def _intermediaries_present(request) -> None:
    """The data migration's intermediaries, back after a transactional test flushed every table."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db", "live_server"}:
        return
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        names & {"transactional_db", "live_server"}
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    ensure_intermediaries()


@pytest.fixture
def tasks_in_process(settings: Any) -> None:
    """Celery tasks run here, in the test's transaction, even where CI runs a real worker (REDIS_URL set):
    a task queued to that worker would read another database and never finish within the test.

    Through the setting (Celery reads it from Django's settings each time), never by assigning
    ``app.conf``: an assignment would stay in Celery's own layer and shadow the setting in later tests.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Any:
    """A request in Ukrainian leaves Ukrainian active in the thread after its response (the middleware sets it,
    nothing resets it): the next test, a command's output say, would read Ukrainian."""
    yield
    from django.utils import translation

    translation.deactivate()
