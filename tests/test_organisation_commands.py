"""add_organisation and add_user."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Organisation, User


def test_it_has_the_intermediaries_from_the_migration(db):
    assert set(Organisation.objects.filter(kind="intermediary").values_list("slug", flat=True)) >= {
        "qatar",
        "vatican",
        "south-africa",
        "icrc",
    }


def test_it_adds_an_organisation_and_a_user(db, capsys):
    call_command("add_organisation", "ngo-c", "NGO C (synthetic)", "--kind", "ngo")
    call_command(
        "add_user", "worker-c", "--organisation", "ngo-c", "--role", "supervisor", "--password", "a-good-pass-phrase"
    )
    user = User.objects.get(username="worker-c")
    assert (user.organisation.slug, user.role) == ("ngo-c", "supervisor")
    assert user.check_password("a-good-pass-phrase")
    assert "Created user worker-c" in capsys.readouterr().out


def test_it_adds_a_user_without_a_usable_password(ngo_a):
    call_command("add_user", "later", "--organisation", "ngo-a", "--role", "analyst")
    assert not User.objects.get(username="later").has_usable_password()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["qatar", "Again", "--kind", "intermediary"], "already exists"),
        (["Bad Slug", "X", "--kind", "ngo"], "slug: Use only lower-case"),
        (["ok-slug", "  ", "--kind", "ngo"], "name:"),
    ],
)
def test_it_refuses_a_bad_organisation(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_organisation", *args)


def test_it_refuses_an_unknown_kind(db):
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("add_organisation", "x", "X", "--kind", "club")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["u1", "--organisation", "nowhere", "--role", "caseworker"], "no organisation has the slug"),
        (["u1", "--organisation", "ngo-a", "--role", "caseworker", "--password", "short"], "too short"),
        (["u1", "--organisation", "ngo-a", "--role", "caseworker", "--password", "password1234"], "too common"),
        (["caseworker", "--organisation", "ngo-a", "--role", "caseworker"], "already exists"),
        (["bad name!", "--organisation", "ngo-a", "--role", "caseworker"], "username:"),
    ],
)
def test_it_refuses_a_bad_user(caseworker, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_user", *args)
    assert not User.objects.filter(username="u1").exists()


def test_it_marks_the_host_organisation_and_refuses_a_second_one(db, capsys):
    call_command("add_organisation", "coalition", "Coalition secretariat (synthetic)", "--kind", "ngo", "--host")
    assert "hosting the register" in capsys.readouterr().out
    assert Organisation.objects.get(slug="coalition").is_host
    with pytest.raises(CommandError, match="hosts the register already"):
        call_command("add_organisation", "ngo-z", "NGO Z (synthetic)", "--kind", "ngo", "--host")
    assert not Organisation.objects.filter(slug="ngo-z").exists()
    # The model says the same to the admin's form, and the database refuses a second host whatever writes it.
    second = Organisation(slug="ngo-y", name="NGO Y (synthetic)", kind="ngo", is_host=True)
    with pytest.raises(ValidationError, match="hosts the register already"):
        second.full_clean()
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_exact_register_wide_figures_are_for_superusers_and_the_hosts_users_only(ngo_a, ngo_b):
    from accounts.permissions import FiguresScope, exact_figures_scope
    from tests.factories import UserFactory

    ngo_a.is_host = True
    ngo_a.save()
    for role in ("caseworker", "supervisor", "analyst", "org_admin"):
        at_host = UserFactory(username=f"{role}-host", organisation=ngo_a, role=role)
        elsewhere = UserFactory(username=f"{role}-other", organisation=ngo_b, role=role)
        assert exact_figures_scope(at_host) is FiguresScope.ALL
        assert exact_figures_scope(elsewhere) is FiguresScope.ORGANISATION
    root = UserFactory(username="root", organisation=ngo_b, is_superuser=True)
    assert exact_figures_scope(root) is FiguresScope.ALL
    gone = UserFactory(username="gone", organisation=ngo_a, role="analyst", is_active=False)
    assert exact_figures_scope(gone) is FiguresScope.PUBLISHED
