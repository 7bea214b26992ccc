"""Shared set-up for the partner API tests. All data is synthetic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Organisation
from casework.models import Case
from partners import services, tokens
from partners.models import Share
from tests.factories import CaseFactory, OrganisationFactory


def make_token(organisation: Organisation, scope: str = "read", **changes) -> tuple[ApiToken, str]:
    token, plain = tokens.create_token(organisation=organisation, scope=scope, created_by=None)
    if changes:
        for name, value in changes.items():
            setattr(token, name, value)
        token.save()
    return token, plain


def share(case: Case, partner: Organisation, scope: str = "read", expires_at=None) -> Share:
    [made] = services.share_cases(
        owner=case.organisation, partner=partner, cases=[case], scope=scope, expires_at=expires_at, shared_by=None
    )
    return made


def case_shared_for_update() -> tuple[Case, APIClient]:
    """A case of an NGO shared for update with Qatar, and an API client holding a Qatar token of that scope."""
    owner = OrganisationFactory(slug="ngo-owner")
    partner = Organisation.objects.get(slug="qatar")
    case = CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10))
    share(case, partner, "update")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner, 'update')[1]}")
    return case, client


def auth(plain: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


@dataclass
class World:
    owner: Organisation
    partner: Organisation
    stranger: Organisation
    cases: dict[str, Case]
    tokens: dict[str, str | None]


def build_world() -> World:
    """An owner NGO, a partner (Qatar) and an unrelated organisation, with every kind of token and case."""
    owner = OrganisationFactory(slug="ngo-owner", name="Owner NGO (synthetic)")
    partner = Organisation.objects.get(slug="qatar")
    stranger = Organisation.objects.get(slug="vatican")
    cases = {
        kind: CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10))
        for kind in ("shared_update", "shared_read", "unshared", "expired_share")
    }
    share(cases["shared_update"], partner, "update")
    share(cases["shared_read"], partner, "read")
    expired = share(cases["expired_share"], partner, "update")
    Share.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    yesterday = timezone.now() - dt.timedelta(days=1)
    tokens: dict[str, str | None] = {
        "owner": make_token(owner, "update")[1],
        "partner_read": make_token(partner, "read")[1],
        "partner_update": make_token(partner, "update")[1],
        "unrelated": make_token(stranger, "update")[1],
        "expired": make_token(partner, "update", expires_at=yesterday)[1],
        "revoked": make_token(partner, "update", revoked_at=yesterday)[1],
        "none": None,
    }
    return World(owner=owner, partner=partner, stranger=stranger, cases=cases, tokens=tokens)
