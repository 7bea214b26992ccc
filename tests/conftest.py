from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import connection

from casework.models import Case
from partners.models import Organisation, Role, User
from tests.factories import CaseFactory, OrganisationFactory, UserFactory


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL: set DATABASE_URL (CI does)",
)


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
