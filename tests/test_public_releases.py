"""The public figures (/public/figures/) and the releases API: only approved releases, to anyone, cacheable.

A partner token, a caseworker and an anonymous reader each get the releases
and nothing else: never a draft, never a snapshot's exact figures.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from accounts.models import Role
from reports import releases
from reports.models import Release
from tests.api_helpers import make_token
from tests.factories import CaseFactory, UserFactory

D = dt.date


@pytest.fixture
def host(ngo_a):
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    return ngo_a


@pytest.fixture
def register(host, ngo_b):
    """Forty cases from 2024 on, in two organisations."""
    return [
        CaseFactory(organisation=host if n % 3 else ngo_b, reported_on=D(2024, 1, 1) + dt.timedelta(days=n * 7))
        for n in range(40)
    ]


@pytest.fixture
def published(register):
    first, _new = releases.release_figures_from_command(as_of=D(2024, 12, 31), note="")
    second, _new = releases.release_figures_from_command(as_of=D(2025, 2, 2), note="")
    return first, second


@pytest.fixture
def draft(published, host):
    supervisor = UserFactory(username="host-supervisor", organisation=host, role=Role.SUPERVISOR)
    return releases.prepare_release(user=supervisor, as_of=D(2025, 3, 31))


def test_the_public_page_shows_the_latest_release_without_signing_in(client, published):
    _first, second = published
    response = client.get("/public/figures/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "as of" in page and "Release 2" in page
    assert (
        f"{second.figures['totals']['reported']:,}".replace(",", "\u202f") in page
        or str(second.figures["totals"]["reported"]) in page
    )
    # Both releases are listed, each with a link of its own.
    assert "/public/figures/1/" in page and "/public/figures/2/" in page
    assert "Which numbers are exact" in page


def test_an_earlier_release_by_its_number_and_a_missing_one(client, published):
    response = client.get("/public/figures/1/")
    assert response.status_code == 200
    assert "A newer release exists" in response.content.decode()
    assert client.get("/public/figures/3/").status_code == 404
    assert client.get("/public/figures/99999999999999999999/").status_code == 404


def test_a_draft_is_never_public(client, draft):
    assert draft.state == Release.State.DRAFT
    assert client.get(f"/public/figures/{draft.number}/").status_code == 404
    assert f"/public/figures/{draft.number}/" not in client.get("/public/figures/").content.decode()
    assert client.get(f"/api/v1/releases/{draft.number}/").status_code == 404
    numbers = [row["number"] for row in client.get("/api/v1/releases/").json()["results"]]
    assert draft.number not in numbers and numbers == [2, 1]


def test_the_page_is_cacheable_and_reads_no_session(client, published):
    response = client.get("/public/figures/", HTTP_ACCEPT_LANGUAGE="uk")
    cache_control = response["Cache-Control"]
    assert "public" in cache_control and "max-age=" in cache_control and "private" not in cache_control
    assert "Accept-Language" in response["Vary"]
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies, "no session, CSRF or language cookie on a public page"
    assert "csrfmiddlewaretoken" not in response.content.decode()


def test_a_signed_in_reader_gets_the_same_public_page(client, published, caseworker):
    client.force_login(caseworker)
    response = client.get("/public/figures/")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "Cookie" not in response.get("Vary", "")
    # The page shows nothing of the reader: no name, no organisation.
    assert caseworker.username not in response.content.decode()


def test_the_language_comes_from_the_address_or_the_browser_never_a_cookie(client, published):
    assert 'lang="uk"' in client.get("/public/figures/", HTTP_ACCEPT_LANGUAGE="uk,en;q=0.5").content.decode()
    assert client.get("/public/figures/", HTTP_ACCEPT_LANGUAGE="uk")["Content-Language"] == "uk"
    english = client.get("/public/figures/?lang=en", HTTP_ACCEPT_LANGUAGE="uk")
    assert english["Content-Language"] == "en" and "Which numbers are exact" in english.content.decode()
    client.cookies["django_language"] = "uk"
    assert client.get("/public/figures/", HTTP_ACCEPT_LANGUAGE="en")["Content-Language"] == "en"
    # A language the register does not have falls back to the default, never an error.
    assert client.get("/public/figures/?lang=xx", HTTP_ACCEPT_LANGUAGE="de")["Content-Language"] == "en"


def test_the_ukrainian_page_is_translated(client, published):
    page = client.get("/public/figures/?lang=uk").content.decode()
    assert "Які числа точні" in page and "Which numbers are exact" not in page
    # The charts too are drawn in the reader's language, whatever the browser's cookie says.
    assert "returned:" not in page and not re.search(r"\d returned", page) and "повернуто" in page


def test_the_page_says_which_numbers_are_exact_and_which_protected(client, published):
    _first, second = published
    page = client.get("/public/figures/").content.decode()
    assert page.count('class="badge exact"') == 3
    assert 'class="badge protected"' in page
    assert f"k = {second.min_cell}" in page


def test_strict_content_security_policy_and_no_script(client, published):
    response = client.get("/public/figures/")
    policy = response["Content-Security-Policy"]
    assert "script-src" in policy and "'unsafe-inline'" not in policy
    assert "<script" not in response.content.decode()


@pytest.mark.parametrize("fmt_name", ["json", "csv", "hxl", "xlsx"])
def test_downloads_of_a_release(client, published, fmt_name, tmp_path):
    _first, second = published
    response = client.get(f"/public/figures/2/download/{fmt_name}/")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"] and "release-2-2025-02-02" in response["Content-Disposition"]
    assert "public" in response["Cache-Control"]
    body = response.content
    if fmt_name == "json":
        assert json.loads(body) == second.figures
    elif fmt_name == "xlsx":
        path = tmp_path / "release.xlsx"
        path.write_bytes(body)
        book = load_workbook(path)
        assert len(book.sheetnames) >= 2
    else:
        text = body.decode()
        assert str(second.figures["totals"]["reported"]) in text
        if fmt_name == "hxl":
            assert "#affected" in text and "#meta" in text and "zcdp" in text


def test_a_file_of_an_unknown_format_or_release_is_a_404(client, published):
    assert client.get("/public/figures/2/download/pdf/").status_code == 404
    assert client.get("/public/figures/7/download/json/").status_code == 404


def test_the_public_page_costs_the_same_few_queries_however_many_releases(client, register):
    releases.release_figures_from_command(as_of=D(2024, 6, 30))
    with CaptureQueriesContext(connection) as one:
        assert client.get("/public/figures/").status_code == 200
    for month in (8, 10, 12):
        releases.release_figures_from_command(as_of=D(2024, month, 31))
    with CaptureQueriesContext(connection) as four:
        assert client.get("/public/figures/").status_code == 200
    assert len(four) == len(one) <= 5


def test_before_any_release_the_page_says_so(client, register):
    response = client.get("/public/figures/")
    assert response.status_code == 200 and "No figures have been published yet." in response.content.decode()
    assert client.get("/api/v1/releases/latest/").status_code == 404
    assert client.get("/api/v1/releases/").json() == {"results": []}


# --- API ----------------------------------------------------------------------------------------


def test_the_api_serves_releases_to_anyone_and_nothing_else(published):
    first, second = published
    anonymous = Client()
    listing = anonymous.get("/api/v1/releases/")
    assert listing.status_code == 200
    assert [row["number"] for row in listing.json()["results"]] == [2, 1]
    assert listing.json()["results"][0]["totals"]["reported"] == second.figures["totals"]["reported"]
    latest = anonymous.get("/api/v1/releases/latest/")
    assert latest.status_code == 200 and latest.json()["number"] == 2
    assert latest.json()["figures"] == second.figures
    assert "public" in latest["Cache-Control"] and latest["Last-Modified"]
    one = anonymous.get("/api/v1/releases/1/")
    assert one.json()["figures"] == first.figures and one.json()["as_of"] == "2024-12-31"
    missing = anonymous.get("/api/v1/releases/5/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_release"
    assert missing["Cache-Control"] == "no-store"


def test_a_partner_token_reads_the_same_releases(published, qatar):
    _first, second = published
    _token, secret = make_token(qatar)
    response = Client().get("/api/v1/releases/latest/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200 and response.json()["figures"] == second.figures


def test_an_invalid_token_is_refused_even_where_none_is_needed(published):
    response = Client().get("/api/v1/releases/latest/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401


def test_the_released_figures_never_carry_exact_breakdowns(published):
    """What leaves through these doors is the release's protected figures: no exact or per-organisation part."""
    body = Client().get("/api/v1/releases/latest/").json()
    assert set(body) == {"number", "as_of", "published_at", "figures"}
    assert "by_organisation" not in json.dumps(body) and set(body["figures"]["exact"]) <= {"totals", "records"}
