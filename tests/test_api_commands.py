"""create_token and share_cases."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Organisation
from partners.models import Share
from tests.factories import CaseFactory, OrganisationFactory


def create_token(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip().splitlines()[-1]


def test_it_creates_a_token_shown_once_and_stored_hashed(db):
    plain = create_token("qatar", "--scope", "read", "--expires", "30")
    token = ApiToken.objects.get()
    assert plain.startswith(f"rr_{token.prefix}_")
    assert plain.split("_", 2)[2] not in token.digest and token.digest != plain
    assert token.expires_at > timezone.now() + dt.timedelta(days=29)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get("/api/v1/intermediaries/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere", "--scope", "read"], "no organisation"),
        (["qatar", "--scope", "read", "--expires", "0"], "between 1 and 3650"),
    ],
)
def test_it_refuses_bad_token_requests(db, args, message):
    with pytest.raises(CommandError, match=message):
        create_token(*args)
    assert not ApiToken.objects.exists()


def test_it_shares_chosen_or_all_cases_with_an_expiry(db):
    owner = OrganisationFactory(slug="ngo-owner")
    cases = CaseFactory.create_batch(3, organisation=owner)
    call_command(
        "share_cases",
        "ngo-owner",
        "qatar",
        "--scope",
        "update",
        "--reference",
        cases[0].reference.lower(),
        stdout=io.StringIO(),
    )
    share = Share.objects.get()
    assert (share.case, share.scope, share.partner.slug) == (cases[0], "update", "qatar")
    call_command(
        "share_cases", "ngo-owner", "qatar", "--scope", "read", "--all", "--expires", "2999-01-01", stdout=io.StringIO()
    )
    live = Share.objects.active()
    assert live.count() == 3 and set(live.values_list("scope", flat=True)) == {"read"}
    assert Share.objects.filter(revoked_at__isnull=False).count() == 1  # the earlier terms are kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere", "qatar", "--scope", "read", "--all"], "owner: no organisation"),
        (["ngo-owner", "nowhere", "--scope", "read", "--all"], "partner: no organisation"),
        (["ngo-owner", "qatar", "--scope", "read", "--reference", "C-0000-0000"], "has no case C-0000-0000"),
        (["ngo-owner", "qatar", "--scope", "read", "--all", "--expires", "soon"], "not a date"),
        (["ngo-owner", "qatar", "--scope", "read", "--all", "--expires", "2001-01-01"], "future"),
        (["ngo-owner", "ngo-owner", "--scope", "read", "--all"], "itself"),
    ],
)
def test_it_refuses_bad_share_requests(db, args, message):
    owner = OrganisationFactory(slug="ngo-owner")
    CaseFactory(organisation=owner)
    with pytest.raises(CommandError, match=message):
        call_command("share_cases", *args, stdout=io.StringIO())
    assert not Share.objects.exists()
    assert Organisation.objects.filter(slug="ngo-owner").exists()
