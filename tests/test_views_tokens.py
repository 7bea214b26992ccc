"""The organisation's API tokens: listed, created (shown once), revoked; for the org admin only."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.api_helpers import make_token
from tests.factories import OrganisationFactory, UserFactory

URL = "/organisation/tokens/"


def api_status(plain: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return api.get("/api/v1/cases/").status_code


def created_token(response) -> str:
    match = re.search(r'id="new-secret" class="secret" value="([^"]+)"', response.text)
    assert match, response.text[:3000]
    return match.group(1)


@pytest.fixture
def signed_in(client, org_admin):
    client.force_login(org_admin)
    return client


def test_it_lists_the_organisations_tokens_and_no_others(signed_in, org_admin, ngo_a, ngo_b):
    used, _plain = make_token(ngo_a, "update", name="Partner sync (synthetic)")
    ApiToken.objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    revoked, _plain = make_token(ngo_a, "read", name="Old script (synthetic)", revoked_at=timezone.now())
    foreign, _plain = make_token(ngo_b, "read", name="Not ours (synthetic)")
    response = signed_in.get(URL)
    assert response.status_code == 200
    assert [token.pk for token in response.context["tokens"]] == [used.pk, revoked.pk]  # live ones first
    text = response.text
    for expected in ("Partner sync (synthetic)", used.prefix, "Read and update", "Old script (synthetic)", "Revoked"):
        assert expected in text, expected
    assert foreign.prefix not in text and "Not ours" not in text
    assert f"/organisation/tokens/{used.pk}/revoke/" in text
    assert f"/organisation/tokens/{revoked.pk}/revoke/" not in text


def test_it_shows_a_new_token_once_and_never_caches_the_page(signed_in, org_admin):
    response = signed_in.post(URL, {"name": "Case sync (synthetic)", "scope": "read", "expires_in_days": "30"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    plain = created_token(response)
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.created_by) == ("Case sync (synthetic)", "read", org_admin)
    assert plain.startswith(f"rr_{token.prefix}_")
    assert plain not in (token.digest, token.prefix)
    assert token.expires_at is not None
    assert token.expires_at.date() == (timezone.now() + dt.timedelta(days=30)).date()
    assert "shown only this once" in response.text
    # It works, and it is never shown again.
    assert api_status(plain) == 200
    assert plain not in signed_in.get(URL).text
    assert token.prefix in signed_in.get(URL).text


def test_it_creates_a_token_that_does_not_expire(signed_in):
    response = signed_in.post(URL, {"name": "Forever (synthetic)", "scope": "update", "expires_in_days": ""})
    assert response.status_code == 201
    assert ApiToken.objects.get().expires_at is None


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"name": "", "scope": "read", "expires_in_days": "30"}, "This field is required."),
        ({"name": "x", "scope": "admin", "expires_in_days": "30"}, "Select a valid choice."),
        ({"name": "x", "scope": "read", "expires_in_days": "0"}, "greater than or equal to 1"),
        ({"name": "x", "scope": "read", "expires_in_days": "5000"}, "less than or equal to 3650"),
    ],
)
def test_it_explains_a_refused_token_and_creates_none(signed_in, posted, message):
    response = signed_in.post(URL, posted)
    assert response.status_code == 400
    assert message in response.text
    assert "No token was created" in response.text
    assert not ApiToken.objects.exists()


def test_it_revokes_a_token_and_the_api_refuses_it_on_the_next_request(signed_in, ngo_a):
    token, plain = make_token(ngo_a, "read", name="Sync (synthetic)")
    assert api_status(plain) == 200
    response = signed_in.post(f"/organisation/tokens/{token.pk}/revoke/", {"confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == URL
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_status(plain) == 401
    assert f"The token “Sync (synthetic)” ({token.prefix}) is revoked" in signed_in.get(URL).text


def test_it_asks_before_revoking_a_token(signed_in, ngo_a):
    token, plain = make_token(ngo_a, "read", name="Sync (synthetic)")
    response = signed_in.post(f"/organisation/tokens/{token.pk}/revoke/")
    assert response.status_code == 200
    assert "Revoke this API token?" in response.text and 'name="confirmed" value="1"' in response.text
    token.refresh_from_db()
    assert token.revoked_at is None and api_status(plain) == 200


def test_it_says_so_when_a_token_was_already_revoked(signed_in, ngo_a):
    token, _plain = make_token(ngo_a, revoked_at=timezone.now())
    response = signed_in.post(f"/organisation/tokens/{token.pk}/revoke/", follow=True)
    assert "That token had already been revoked." in response.text


def test_it_answers_404_for_another_organisations_token(signed_in, ngo_b):
    token, plain = make_token(ngo_b)
    assert signed_in.post(f"/organisation/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None and api_status(plain) == 200


@pytest.mark.parametrize("role_fixture", ["caseworker", "supervisor", "analyst"])
def test_it_refuses_other_roles(client, request, role_fixture, ngo_a):
    token, plain = make_token(ngo_a)
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "x", "scope": "read"}).status_code == 403
    assert client.post(f"/organisation/tokens/{token.pk}/revoke/").status_code == 403
    assert ApiToken.objects.count() == 1 and api_status(plain) == 200
    assert "/organisation/" not in client.get("/figures/").text  # no nav link either


def test_it_sends_a_visitor_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_shows_the_org_admin_the_organisation_link(signed_in):
    response = signed_in.get("/")
    assert 'href="/organisation/people/"' in response.text


def test_it_manages_only_the_admins_own_organisation(client, db):
    other = OrganisationFactory(slug="ngo-c")
    admin_c = UserFactory(username="orgadmin-c", organisation=other, role="org_admin")
    client.force_login(admin_c)
    client.post(URL, {"name": "C (synthetic)", "scope": "read", "expires_in_days": "10"})
    assert ApiToken.objects.get().organisation == other
