"""add_organisation and add_user."""

from __future__ import annotations

import pytest
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
