"""Sharing cases with partners from the web pages: one case, ticked cases, every case a filter matches; revoking."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organisation
from casework.models import AccessLog
from partners.models import Share
from tests.api_helpers import make_token, share
from tests.factories import CaseFactory, UserFactory


def section(response, name: str) -> dict:
    """The context of a section that partners adds to casework's pages (casework.sections)."""
    return next(shown.context for shown in response.context["sections"] if shown.name == name)


def page_queries(queries) -> list[str]:
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


def tomorrow() -> str:
    return (timezone.localdate() + dt.timedelta(days=1)).isoformat()


def partner_api(partner: Organisation) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner)[1]}")
    return api


def listed_by_api(api: APIClient) -> list[str]:
    response = api.get("/api/v1/cases/")
    assert response.status_code == 200
    return [row["reference"] for row in response.json()["results"]]


@pytest.fixture
def qatar_api(qatar) -> APIClient:
    return partner_api(qatar)


@pytest.fixture
def supervisor_b(ngo_b):
    return UserFactory(username="supervisor-b", organisation=ngo_b, role="supervisor")


# --- one case, from its page -------------------------------------------------------------


def test_it_offers_a_supervisor_every_other_organisation_as_partner(client, supervisor, case, ngo_b, qatar):
    client.force_login(supervisor)
    response = client.get(f"/cases/{case.reference}/")
    assert response.status_code == 200
    assert 'id="sharing"' in response.text
    choices = [value for value, _label in section(response, "sharing")["share_form"].fields["partner"].choices if value]
    slugs = [str(value) for value in choices]
    assert "qatar" in slugs and "ngo-b" in slugs and "vatican" in slugs  # intermediaries and NGOs alike
    assert "ngo-a" not in slugs  # never the own organisation
    assert "This case is not shared with any partner." in response.text


@pytest.mark.parametrize("role_fixture", ["caseworker", "org_admin"])
def test_it_shows_other_roles_no_sharing_controls(client, request, role_fixture, case, qatar):
    share(case, qatar)
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.get(f"/cases/{case.reference}/")
    assert response.status_code == 200
    assert 'id="sharing"' not in response.text and "/shares/" not in response.text
    listing = client.get("/cases/")
    assert 'name="case"' not in listing.text and "/cases/share/" not in listing.text


def test_it_shares_a_case_with_a_partner_until_a_date(client, supervisor, case, qatar, qatar_api):
    assert listed_by_api(qatar_api) == []
    client.force_login(supervisor)
    day = tomorrow()
    response = client.post(
        f"/cases/{case.reference}/shares/", {"partner": "qatar", "scope": "update", "expires_on": day}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{case.reference}/#sharing"
    made = Share.objects.get(case=case)
    assert (made.partner, made.scope, made.created_by) == (qatar, "update", supervisor)
    assert made.owner_id == case.organisation_id
    assert timezone.localtime(made.expires_at).date() == timezone.localdate() + dt.timedelta(days=2)  # end of the day
    page = client.get(f"/cases/{case.reference}/")
    assert "1 case shared with State of Qatar (Read and update)." in page.text
    assert "State of Qatar" in page.text and "Read and update" in page.text and "by supervisor" in page.text
    assert f"/cases/{case.reference}/shares/{made.pk}/revoke/" in page.text
    # The partner sees it on its very next request.
    assert listed_by_api(qatar_api) == [case.reference]
    logged = AccessLog.objects.get(case=case, action="share", user=supervisor)
    assert logged.ip_address == "127.0.0.1"


def test_it_shares_without_an_expiry(client, supervisor, case, qatar):
    client.force_login(supervisor)
    client.post(f"/cases/{case.reference}/shares/", {"partner": "qatar", "scope": "read"})
    made = Share.objects.get(case=case)
    assert made.expires_at is None and made.scope == "read"
    assert "until revoked" in client.get(f"/cases/{case.reference}/").text


def test_it_replaces_the_terms_when_sharing_again_with_the_same_partner(client, supervisor, case, qatar):
    client.force_login(supervisor)
    client.post(f"/cases/{case.reference}/shares/", {"partner": "qatar", "scope": "read"})
    client.post(f"/cases/{case.reference}/shares/", {"partner": "qatar", "scope": "update"})
    assert [(s.scope, s.revoked_at is None) for s in Share.objects.filter(case=case).order_by("id")] == [
        ("read", False),
        ("update", True),
    ]


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"partner": "qatar", "scope": "read", "expires_on": "2020-01-01"}, "The expiry must be in the future."),
        ({"partner": "ngo-a", "scope": "read"}, "Select a valid choice."),
        ({"partner": "", "scope": "read"}, "This field is required."),
        ({"partner": "qatar", "scope": "admin"}, "Select a valid choice."),
    ],
)
def test_it_explains_a_refused_share_and_shares_nothing(client, supervisor, case, qatar, posted, message):
    client.force_login(supervisor)
    response = client.post(f"/cases/{case.reference}/shares/", posted)
    assert response.status_code == 400
    assert message in response.text
    assert "Nothing was shared: see the messages below." in response.text
    assert not Share.objects.exists()


@pytest.mark.parametrize("role_fixture", ["caseworker", "org_admin", "analyst"])
def test_it_refuses_sharing_and_revoking_to_other_roles(client, request, role_fixture, case, qatar):
    existing = share(case, qatar)
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.post(f"/cases/{case.reference}/shares/", {"partner": "vatican", "scope": "read"}).status_code == 403
    assert client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/").status_code == 403
    bulk = {"mode": "selected", "case": [case.reference], "partner": "vatican", "scope": "read"}
    assert client.post("/cases/share/", bulk).status_code == 403
    assert client.get("/cases/share/").status_code == 403
    assert list(Share.objects.values_list("partner__slug", "revoked_at")) == [("qatar", None)]


def test_it_answers_404_to_another_organisations_supervisor(client, supervisor_b, case, qatar):
    existing = share(case, qatar)
    client.force_login(supervisor_b)
    assert client.post(f"/cases/{case.reference}/shares/", {"partner": "vatican", "scope": "read"}).status_code == 404
    assert client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/").status_code == 404
    response = client.post("/cases/share/", {"mode": "selected", "case": [case.reference], "partner": "vatican"})
    assert response.status_code == 400  # nothing of theirs was ticked
    assert list(Share.objects.values_list("partner__slug", "revoked_at")) == [("qatar", None)]


def test_it_requires_a_post_to_share_or_revoke(client, supervisor, case, qatar):
    existing = share(case, qatar)
    client.force_login(supervisor)
    assert client.get(f"/cases/{case.reference}/shares/").status_code == 405
    assert client.get(f"/cases/{case.reference}/shares/{existing.pk}/revoke/").status_code == 405


# --- revoking ----------------------------------------------------------------------------


def test_it_revokes_a_share_and_the_partner_loses_the_case_on_its_next_request(
    client, supervisor, case, qatar, qatar_api
):
    existing = share(case, qatar)
    assert qatar_api.get(f"/api/v1/cases/{case.reference}/").status_code == 200
    client.force_login(supervisor)
    response = client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/", {"confirmed": "1"})
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.reference}/#sharing"
    existing.refresh_from_db()
    assert existing.revoked_at is not None and existing.revoked_by == supervisor
    assert qatar_api.get(f"/api/v1/cases/{case.reference}/").status_code == 404
    assert listed_by_api(qatar_api) == []
    page = client.get(f"/cases/{case.reference}/")
    assert "The share with State of Qatar is revoked" in page.text
    assert "This case is not shared with any partner." in page.text
    assert AccessLog.objects.filter(case=case, action="revoke", user=supervisor).count() == 1


def test_it_asks_before_revoking_a_share_and_changes_nothing_until_confirmed(client, supervisor, case, qatar):
    existing = share(case, qatar)
    client.force_login(supervisor)
    response = client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/")
    assert response.status_code == 200
    assert "Revoke the share with State of Qatar?" in response.text
    assert 'name="confirmed" value="1"' in response.text
    assert f'href="/cases/{case.reference}/#sharing"' in response.text  # cancel goes back
    existing.refresh_from_db()
    assert existing.revoked_at is None
    assert not AccessLog.objects.filter(case=case, action="revoke").exists()


def test_it_says_so_when_a_share_was_already_revoked(client, supervisor, case, qatar):
    existing = share(case, qatar)
    client.force_login(supervisor)
    client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/", {"confirmed": "1"})
    response = client.post(f"/cases/{case.reference}/shares/{existing.pk}/revoke/", follow=True)
    assert "That share had already been revoked." in response.text


def test_it_answers_404_for_a_share_of_another_case(client, supervisor, case, ngo_a, qatar):
    other = share(CaseFactory(organisation=ngo_a), qatar)
    client.force_login(supervisor)
    assert client.post(f"/cases/{case.reference}/shares/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_it_lists_only_live_shares(client, supervisor, case, qatar):
    live = share(case, qatar)
    ended = share(case, Organisation.objects.get(slug="vatican"))
    Share.objects.filter(pk=ended.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    client.force_login(supervisor)
    response = client.get(f"/cases/{case.reference}/")
    assert [s.pk for s in section(response, "sharing")["shares"]] == [live.pk]


# --- ticked cases, from the list ---------------------------------------------------------


def test_it_shows_a_supervisor_checkboxes_and_the_bulk_form_around_the_list(client, supervisor, ngo_a):
    cases = CaseFactory.create_batch(3, organisation=ngo_a)
    client.force_login(supervisor)
    text = client.get("/cases/", {"status": "reported"}).text
    assert '<form method="post" class="bulk-form"' in text and 'formaction="/cases/share/"' in text
    for case in cases:
        assert f'name="case" value="{case.reference}"' in text
    assert 'name="mode" value="filter"' in text and "Share all 3 cases matching the filter" in text
    assert 'name="filter" value="status=reported"' in text


def test_it_shares_the_ticked_cases_at_once(client, supervisor, ngo_a, ngo_b, qatar, qatar_api):
    ticked = CaseFactory.create_batch(2, organisation=ngo_a)
    unticked = CaseFactory(organisation=ngo_a)
    foreign = CaseFactory(organisation=ngo_b)
    client.force_login(supervisor)
    response = client.post(
        "/cases/share/",
        {
            "mode": "selected",
            "case": [case.reference for case in ticked] + [foreign.reference],
            "partner": "qatar",
            "scope": "read",
            "next": "/cases/?status=reported",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/cases/?status=reported"
    assert set(Share.objects.values_list("case_id", flat=True)) == {case.pk for case in ticked}
    assert sorted(listed_by_api(qatar_api)) == sorted(case.reference for case in ticked)
    assert unticked.reference not in listed_by_api(qatar_api)
    assert "2 cases shared with State of Qatar (Read)." in client.get("/cases/").text


def test_it_never_redirects_a_bulk_share_off_the_site(client, supervisor, case, qatar):
    client.force_login(supervisor)
    response = client.post(
        "/cases/share/",
        {
            "mode": "selected",
            "case": [case.reference],
            "partner": "qatar",
            "scope": "read",
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/cases/"


def test_it_asks_to_tick_a_case_first(client, supervisor, case, qatar):
    client.force_login(supervisor)
    response = client.post("/cases/share/", {"mode": "selected", "partner": "qatar", "scope": "read"})
    assert response.status_code == 400
    assert "No case was ticked." in response.text
    assert not Share.objects.exists()


def test_it_keeps_the_ticked_cases_when_the_terms_are_refused(client, supervisor, ngo_a):
    ticked = CaseFactory.create_batch(2, organisation=ngo_a)
    client.force_login(supervisor)
    response = client.post(
        "/cases/share/", {"mode": "selected", "case": [c.reference for c in ticked], "scope": "read"}
    )
    assert response.status_code == 400
    assert "This field is required." in response.text
    for case in ticked:
        assert f'name="case" value="{case.reference}"' in response.text
    assert "2 cases ticked" in response.text
    assert not Share.objects.exists()


# --- every case matching the filter, with a confirmation -----------------------------------


def test_it_confirms_the_count_before_sharing_all_cases_matching_the_filter(client, supervisor, ngo_a, ngo_b, qatar):
    CaseFactory.create_batch(3, organisation=ngo_a, oblast="UA-65")
    CaseFactory(organisation=ngo_a, oblast="UA-14")
    CaseFactory(organisation=ngo_b, oblast="UA-65")
    client.force_login(supervisor)
    preview = client.post(
        "/cases/share/", {"mode": "filter", "filter": "oblast=UA-65&page=2", "partner": "qatar", "scope": "update"}
    )
    assert preview.status_code == 200
    assert "The filter matches 3 cases" in preview.text
    assert "Kherson oblast" in preview.text  # the filter, in words
    assert 'name="expected" value="3"' in preview.text
    assert 'name="filter" value="oblast=UA-65"' in preview.text
    assert '<option value="qatar" selected>' in preview.text  # the terms chosen on the list are kept
    assert not Share.objects.exists()  # nothing until confirmed


def test_it_shares_all_cases_matching_the_filter_once_confirmed(client, supervisor, ngo_a, qatar, qatar_api):
    matching = CaseFactory.create_batch(3, organisation=ngo_a, oblast="UA-65")
    CaseFactory(organisation=ngo_a, oblast="UA-14")
    client.force_login(supervisor)
    response = client.post(
        "/cases/share/",
        {"mode": "filter", "filter": "oblast=UA-65", "expected": "3", "partner": "qatar", "scope": "update"},
    )
    assert response.status_code == 302 and response["Location"] == "/cases/?oblast=UA-65"
    assert set(Share.objects.values_list("case_id", flat=True)) == {case.pk for case in matching}
    assert set(Share.objects.values_list("scope", flat=True)) == {"update"}
    assert sorted(listed_by_api(qatar_api)) == sorted(case.reference for case in matching)
    assert AccessLog.objects.filter(action="share").count() == 3


def test_it_shares_nothing_when_the_count_changed_since_the_confirmation(client, supervisor, ngo_a, qatar):
    CaseFactory.create_batch(3, organisation=ngo_a, oblast="UA-65")
    client.force_login(supervisor)
    response = client.post(
        "/cases/share/",
        {"mode": "filter", "filter": "oblast=UA-65", "expected": "2", "partner": "qatar", "scope": "read"},
    )
    assert response.status_code == 409
    assert "the filter now matches 3 cases, not 2" in response.text
    assert 'name="expected" value="3"' in response.text
    assert not Share.objects.exists()


def test_it_confirms_by_a_plain_link_too(client, supervisor, ngo_a):
    CaseFactory.create_batch(2, organisation=ngo_a, status="located")
    client.force_login(supervisor)
    response = client.get("/cases/share/", {"status": "located"})
    assert response.status_code == 200
    assert "The filter matches 2 cases" in response.text


def test_it_says_when_no_case_matches(client, supervisor, ngo_a):
    client.force_login(supervisor)
    response = client.get("/cases/share/", {"status": "located"})
    assert "No case matches: there is nothing to share." in response.text
    assert 'name="expected"' not in response.text


def test_it_explains_a_bad_filter_on_the_confirmation(client, supervisor):
    client.force_login(supervisor)
    response = client.get("/cases/share/", {"status": "lost"})
    assert response.status_code == 400
    assert "Some filters could not be read" in response.text


def test_it_costs_a_supervisor_the_same_list_queries_for_one_case_or_forty(client, supervisor, ngo_a):
    client.force_login(supervisor)
    CaseFactory(organisation=ngo_a)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/cases/").status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    count()
    one, _ = count()
    CaseFactory.create_batch(39, organisation=ngo_a)
    many, sql = count()
    assert many == one, sql


def test_it_refuses_an_end_date_too_far_ahead(client, supervisor, case, qatar):
    client.force_login(supervisor)
    response = client.post(
        f"/cases/{case.reference}/shares/", {"partner": "qatar", "scope": "read", "expires_on": "9999-12-31"}
    )
    assert response.status_code == 400
    assert "within 20 years" in response.text
    assert not Share.objects.filter(case=case).exists()
