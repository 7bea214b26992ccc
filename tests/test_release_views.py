"""The releases pages: list, prepare, approve (with a confirmation step), discard, a release's page and files."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from casework import services as case_services
from reports import releases
from reports.models import Release, Snapshot
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db
D = dt.date


@pytest.fixture
def register(ngo_a, ngo_b, qatar):
    """NGO A hosts the register: 40 cases, 12 returned via Qatar; NGO B: 8 cases."""
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    worker = UserFactory(username="register-worker", organisation=ngo_a, role=Role.SUPERVISOR)
    for index in range(40):
        case = CaseFactory(organisation=ngo_a, reported_on=D(2024, 1, 1) + dt.timedelta(days=index))
        if index < 12:
            case_services.change_status(
                case=case,
                actor=case_services.Actor.for_user(worker),
                to_status="repatriated",
                occurred_on=D(2024, 6, 1),
                expected_version=1,
                via=qatar,
            )
    for index in range(8):
        CaseFactory(organisation=ngo_b, reported_on=D(2024, 2, 1) + dt.timedelta(days=index), oblast="UA-65")


@pytest.fixture
def host_analyst(ngo_a):
    return UserFactory(username="host-analyst", organisation=ngo_a, role=Role.ANALYST)


@pytest.fixture
def host_supervisor(ngo_a):
    return UserFactory(username="host-supervisor", organisation=ngo_a, role=Role.SUPERVISOR)


@pytest.fixture
def outsider(ngo_b):
    return UserFactory(username="b-supervisor", organisation=ngo_b, role=Role.SUPERVISOR)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def approved(as_of: dt.date | None = None) -> Release:
    as_of = as_of or D(2024, 12, 31)
    release, _new = releases.release_figures_from_command(as_of=as_of)
    return release


def draft(user, as_of: dt.date | None = None) -> Release:
    as_of = as_of or D(2025, 3, 1)
    return releases.prepare_release(user=user, as_of=as_of)


# --- the list --------------------------------------------------------------------------------


def test_it_lists_the_approved_releases_to_every_signed_in_user(register, caseworker_b):
    first = approved()
    page = signed_in(caseworker_b).get(reverse("releases")).content.decode()
    assert f'href="{reverse("release-detail", args=[first.number])}"' in page
    assert "48" in page  # the exact headline total of the whole register
    assert "Prepare a release" not in page


def test_it_shows_the_prepare_form_and_the_budget_to_the_hosts_analyst(register, host_analyst):
    approved()
    page = signed_in(host_analyst).get(reverse("releases")).content.decode()
    assert "Prepare a release" in page and 'action="/figures/releases/prepare/"' in page
    assert "ρ = 0.714" in page and "±2.96" in page  # the headline tables' share of ρ (0.8)
    assert "The next release can be as of 28 Jan 2025 or later." in page


def test_the_list_needs_a_sign_in(register, client):
    response = client.get(reverse("releases"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_list_costs_the_same_queries_for_many_releases_as_for_one(register, host_analyst, settings):
    settings.FIGURES_RELEASE_MIN_DAYS = 7
    approved(D(2024, 10, 1))
    client = signed_in(host_analyst)
    client.get(reverse("releases"))
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("releases")).status_code == 200
    for week in range(1, 6):
        approved(D(2024, 10, 1) + dt.timedelta(days=7 * week))
    draft(host_analyst, as_of=D(2024, 12, 31))
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("releases")).content.decode()
    assert page.count('class="badge state-') == 7
    assert len(one) == len(many), "\n".join(query["sql"] for query in many.captured_queries)


# --- preparing --------------------------------------------------------------------------------


def test_the_hosts_analyst_prepares_a_draft_that_only_draft_handlers_see(register, host_analyst, outsider, caseworker):
    response = signed_in(host_analyst).post(
        reverse("release-prepare"), {"as_of": "2024-12-31", "note": "For the quarterly briefing."}
    )
    release = Release.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("release-detail", args=[release.number])
    assert release.state == "draft" and release.prepared_by == host_analyst
    page = signed_in(host_analyst).get(response["Location"]).content.decode()
    assert "Draft: not published" in page and "For the quarterly briefing." in page
    assert "Approve…" not in page and "Discard the draft…" in page  # an analyst prepares, never approves
    for reader in (outsider, caseworker):  # another organisation's supervisor; the host's caseworker
        client = signed_in(reader)
        assert client.get(response["Location"]).status_code == 404
        assert client.get(reverse("release-export", args=[release.number, "json"])).status_code == 404
        assert "Release 1" not in client.get(reverse("releases")).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"as_of": "2099-01-01"}, "future"),
        ({"as_of": "not a date"}, "Enter a valid date"),
        ({"as_of": ""}, "This field is required"),
        ({"as_of": "2024-12-31", "note": "Ring +380 67 123 4567 for details."}, "personal data"),
        ({"as_of": "2024-12-31", "note": "x" * 2001}, "at most 2000 characters"),
    ],
)
def test_bad_input_is_a_clear_message_and_changes_nothing(register, host_analyst, data, message):
    client = signed_in(host_analyst)
    response = client.post(reverse("release-prepare"), data, follow=True)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Release.objects.exists() and not Snapshot.objects.exists()


def test_a_malformed_request_is_refused_before_anything_happens(register, host_analyst):
    response = signed_in(host_analyst).post(reverse("release-prepare"), {"as_of": "2024-12-31\x00"})
    assert response.status_code == 400
    assert not Release.objects.exists() and not Snapshot.objects.exists()


def test_others_cannot_prepare(register, outsider, caseworker):
    for user in (outsider, caseworker):
        response = signed_in(user).post(reverse("release-prepare"), {"as_of": "2024-12-31"})
        assert response.status_code == 403
    assert signed_in(outsider).get(reverse("release-prepare")).status_code == 405
    assert not Release.objects.exists()


# --- approving and discarding -----------------------------------------------------------------


def test_a_supervisor_approves_after_a_confirmation_step(register, host_analyst, host_supervisor):
    release = draft(host_analyst)
    client = signed_in(host_supervisor)
    page = client.get(reverse("release-detail", args=[release.number])).content.decode()
    assert "Approve…" in page
    url = reverse("release-approve", args=[release.number])
    asked = client.post(url)
    assert asked.status_code == 200 and "Approve release 1" in asked.content.decode()
    assert "can never be changed" in asked.content.decode()
    release.refresh_from_db()
    assert release.state == "draft"  # nothing yet
    done = client.post(url, {"confirmed": "1"}, follow=True)
    assert "Release 1 is approved and published." in done.content.decode()
    release.refresh_from_db()
    assert release.state == "approved"
    # Published: every signed-in user sees it now.
    assert client.post(url, {"confirmed": "1"}, follow=True).status_code == 200
    assert release.approvals.count() == 1


def test_approving_is_refused_to_analysts_and_unknown_to_outsiders(register, host_analyst, outsider):
    release = draft(host_analyst)
    url = reverse("release-approve", args=[release.number])
    assert signed_in(host_analyst).post(url, {"confirmed": "1"}).status_code == 403
    assert signed_in(outsider).post(url, {"confirmed": "1"}).status_code == 404
    assert signed_in(outsider).get(url).status_code == 405  # whatever the number: nothing to learn
    release.refresh_from_db()
    assert release.state == "draft" and not release.approvals.exists()


def test_with_two_approvers_the_page_asks_for_a_second(register, host_analyst, host_supervisor, ngo_a, settings):
    settings.FIGURES_RELEASE_APPROVERS = 2
    release = draft(host_analyst)
    url = reverse("release-approve", args=[release.number])
    first = signed_in(host_supervisor).post(url, {"confirmed": "1"}, follow=True).content.decode()
    assert "needs another supervisor" in first
    again = signed_in(host_supervisor).post(url, {"confirmed": "1"}, follow=True).content.decode()
    assert "approved this release already" in again
    second = UserFactory(username="host-supervisor-2", organisation=ngo_a, role=Role.SUPERVISOR)
    signed_in(second).post(url, {"confirmed": "1"})
    release.refresh_from_db()
    assert release.state == "approved" and release.approvals.count() == 2


def test_a_draft_is_discarded_after_a_confirmation_step(register, host_analyst):
    release = draft(host_analyst)
    client = signed_in(host_analyst)
    url = reverse("release-discard", args=[release.number])
    assert "Discard this draft?" in client.post(url).content.decode()
    assert Release.objects.exists()
    response = client.post(url, {"confirmed": "1"})
    assert response.status_code == 302 and not Release.objects.exists()
    assert client.post(url, {"confirmed": "1"}).status_code == 404


def test_an_approved_release_cannot_be_discarded(register, host_supervisor):
    release = approved()
    response = signed_in(host_supervisor).post(
        reverse("release-discard", args=[release.number]), {"confirmed": "1"}, follow=True
    )
    assert "cannot be discarded" in response.content.decode()
    assert Release.objects.filter(pk=release.pk, state="approved").exists()


# --- a release's page and files ----------------------------------------------------------------


def test_the_page_says_what_is_exact_and_what_is_protected(register, caseworker_b):
    release = approved()
    page = signed_in(caseworker_b).get(reverse("release-detail", args=[release.number])).content.decode()
    assert re.search(r'<span class="stat">48</span>', page) and re.search(r'<span class="stat">12</span>', page)
    assert page.count('class="exactness exact"') == 3
    assert "Every other number is protected" in page
    assert "fewer than 5" in page  # empty oblasts: never a small number
    assert f"{release.sigma:.2f}" in page and "0.7143" in page
    assert not re.search(r'<td class="num">[1-4]</td>', page)


def test_the_page_is_allowed_by_the_strict_content_security_policy(register, host_analyst):
    release = draft(host_analyst)
    response = signed_in(host_analyst).get(reverse("release-detail", args=[release.number]))
    page = response.content.decode()
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert " style=" not in page and "<style" not in page
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_the_page_costs_the_same_queries_whatever_the_approvals(register, host_analyst, ngo_a, settings):
    settings.FIGURES_RELEASE_APPROVERS = 2
    release = draft(host_analyst)
    client = signed_in(host_analyst)
    url = reverse("release-detail", args=[release.number])
    client.get(url)
    with CaptureQueriesContext(connection) as none:
        client.get(url)
    releases.approve_release(user=UserFactory(username="s1", organisation=ngo_a, role=Role.SUPERVISOR), release=release)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    assert len(none) == len(one), "\n".join(query["sql"] for query in one.captured_queries)


def test_unknown_numbers_and_formats_are_404(register, host_supervisor):
    release = approved()
    client = signed_in(host_supervisor)
    for url in (
        reverse("release-detail", args=[2]),
        reverse("release-detail", args=[2**40]),
        reverse("release-export", args=[release.number, "pdf"]),
        reverse("release-export", args=[2**33, "csv"]),
        "/figures/releases/-1/",
        "/figures/releases/one/",
    ):
        assert client.get(url).status_code == 404, url


def test_the_files_download_with_their_method(register, caseworker_b):
    release = approved()
    client = signed_in(caseworker_b)
    response = client.get(reverse("release-export", args=[release.number, "json"]))
    assert response["Content-Disposition"] == 'attachment; filename="release-1-2024-12-31.json"'
    assert json.loads(response.content) == release.figures
    hxl = client.get(reverse("release-export", args=[release.number, "hxl"])).content.decode()
    assert "#meta+parameter" in hxl and "zcdp-discrete-gaussian" in hxl
    xlsx = client.get(reverse("release-export", args=[release.number, "xlsx"]))
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
