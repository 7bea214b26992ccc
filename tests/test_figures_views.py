"""The figures page, its snapshot requests, status endpoint and exports, by role."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from unittest import mock

import hxl  # type: ignore[import-untyped]
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from accounts.models import Organisation
from casework import services as case_services
from config import broker
from reports import services
from reports.models import Snapshot
from reports.tasks import compute_snapshot_task
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _tasks_in_process(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch.object(
        compute_snapshot_task, "apply_async", side_effect=lambda args, **options: compute_snapshot_task.apply(args=args)
    ):
        yield


@pytest.fixture
def register(ngo_a, ngo_b, supervisor):
    """NGO A (the host: its users see every organisation's exact figures): 12 cases, 6 returned via Qatar;
    NGO B: 7 cases, 1 returned with no intermediary."""
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    actor = case_services.Actor.for_user(supervisor)
    admin = UserFactory(username="views-admin", organisation=ngo_b, role="supervisor", is_superuser=True)
    # get_or_create: a transactional test may run after another has flushed the migrations' intermediaries.
    qatar, _created = Organisation.objects.get_or_create(
        slug="qatar", defaults={"name": "State of Qatar", "kind": Organisation.Kind.INTERMEDIARY}
    )
    for index in range(12):
        case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 1, 1) + dt.timedelta(days=index))
        if index < 6:
            case_services.change_status(
                case=case,
                actor=actor,
                to_status="repatriated",
                occurred_on=dt.date(2024, 6, 1),
                expected_version=1,
                via=qatar,
            )
    for index in range(7):
        case = CaseFactory(
            organisation=ngo_b, reported_on=dt.date(2024, 2, 1) + dt.timedelta(days=index), oblast="UA-65"
        )
        if index == 0:
            case_services.change_status(
                case=case,
                actor=case_services.Actor.for_user(admin),
                to_status="repatriated",
                occurred_on=dt.date(2024, 7, 1),
                expected_version=1,
            )


def computed(as_of=dt.date(2024, 12, 31)) -> Snapshot:
    snapshot = Snapshot.objects.create(as_of=as_of, trigger="command", min_cell=5)
    assert services.compute_snapshot(snapshot.pk) == "done"
    return Snapshot.objects.get(pk=snapshot.pk)


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.get(reverse("login"))  # the first request loads the middleware, and its sign-in hooks, in this process
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_it_sends_visitors_who_are_not_signed_in_to_the_login_page(client):
    for url in (
        reverse("figures"),
        reverse("figures-export", args=["csv"]),
        reverse("figures-snapshot-status", args=[1]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post(reverse("figures-request"), {"as_of": "2024-12-31"}).status_code == 302
    assert not Snapshot.objects.exists()


def test_it_says_when_no_figures_exist_yet(supervisor):
    response = signed_in(supervisor).get(reverse("figures"))
    assert response.status_code == 200
    assert "No figures have been computed yet" in response.content.decode()


def test_it_shows_staff_the_exact_figures_of_all_organisations(register, analyst):
    computed()
    page = signed_in(analyst).get(reverse("figures")).content.decode()
    assert "Exact figures of all organisations' cases" in page
    assert re.search(r'<span class="stat">19</span>', page)  # 12 + 7 reported
    assert re.search(r'<span class="stat">7</span>', page)  # 6 + 1 repatriated
    assert "<svg" in page and 'role="img"' in page


@pytest.mark.parametrize("role", ["analyst", "supervisor", "org_admin"])
def test_another_organisations_staff_see_exact_figures_of_their_own_cases_only(register, ngo_b, role):
    computed()
    reader = UserFactory(username=f"{role}-b", organisation=ngo_b, role=role)
    page = signed_in(reader).get(reverse("figures")).content.decode()
    assert "Exact figures of the cases of NGO B (synthetic) only" in page
    assert re.search(r'<span class="stat">7</span>', page)  # NGO B's 7 reported
    assert not re.search(r'<span class="stat">19</span>', page)
    exported = signed_in(reader).get(reverse("figures-export", args=["json"]))
    assert exported.json()["totals"]["reported"] == 7


def test_a_superuser_of_any_organisation_sees_every_organisations_exact_figures(register, ngo_b):
    computed()
    root = UserFactory(username="root-b", organisation=ngo_b, role="caseworker", is_superuser=True)
    page = signed_in(root).get(reverse("figures")).content.decode()
    assert "Exact figures of all organisations' cases" in page
    assert re.search(r'<span class="stat">19</span>', page)


def test_it_shows_a_caseworker_the_exact_figures_of_their_own_organisation_only(register, caseworker_b):
    computed()
    page = signed_in(caseworker_b).get(reverse("figures")).content.decode()
    assert "Exact figures of the cases of NGO B (synthetic) only" in page
    assert re.search(r'<span class="stat">7</span>', page)  # NGO B's 7 reported
    assert re.search(r'<span class="stat">1</span>', page)
    assert not re.search(r'<span class="stat">19</span>', page)


def test_snapshots_have_no_published_variant_any_more(register, caseworker_b):
    """A snapshot's published view was safe alone and unsafe across a series: only releases publish now."""
    computed()
    page = signed_in(caseworker_b).get(reverse("figures") + "?variant=published").content.decode()
    assert "Exact figures of the cases of NGO B (synthetic) only" in page
    assert not re.search(r'<span class="stat">19</span>', page)  # nothing register-wide
    assert '&amp;variant=published"' not in page and "Published figures" not in page


def test_it_shows_an_older_snapshot_on_request_and_404s_an_unknown_one(register, supervisor):
    older = computed(dt.date(2024, 3, 31))
    computed()
    client = signed_in(supervisor)
    assert "as of 31 Mar 2024" in client.get(reverse("figures") + f"?snapshot={older.pk}").content.decode()
    assert "as of 31 Dec 2024" in client.get(reverse("figures")).content.decode()
    assert client.get(reverse("figures") + "?snapshot=999").status_code == 404
    assert client.get(reverse("figures") + "?snapshot=x").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_requests_figures_and_is_taken_to_them(register, supervisor):
    # Outside a test transaction the computation runs as the request's transaction commits (in-process here).
    response = signed_in(supervisor).post(reverse("figures-request"), {"as_of": "2024-12-31"})
    snapshot = Snapshot.objects.get()
    assert snapshot.state == "done" and snapshot.requested_by == supervisor
    assert response.status_code == 302 and response["Location"] == f"{reverse('figures')}?snapshot={snapshot.pk}"


@pytest.mark.parametrize("role", ["caseworker", "org_admin"])
def test_other_roles_may_not_request_figures(register, ngo_a, role):
    user = UserFactory(username=f"views-{role}", organisation=ngo_a, role=role)
    client = signed_in(user)
    assert client.post(reverse("figures-request"), {"as_of": "2024-12-31"}).status_code == 403
    assert "Compute new figures" not in client.get(reverse("figures")).content.decode()
    assert not Snapshot.objects.exists()


def test_a_request_needs_the_csrf_token(register, supervisor):
    client = signed_in(supervisor, enforce_csrf_checks=True)
    assert client.post(reverse("figures-request"), {"as_of": "2024-12-31"}).status_code == 403
    assert client.get(reverse("figures-request")).status_code == 405
    assert not Snapshot.objects.exists()


def test_a_bad_date_is_refused_with_a_message(register, supervisor):
    client = signed_in(supervisor)
    response = client.post(reverse("figures-request"), {"as_of": "2999-01-01"}, follow=True)
    assert "The date is in the future" in response.content.decode()
    response = client.post(reverse("figures-request"), {"as_of": "soon"}, follow=True)
    assert "Enter a valid date" in response.content.decode()
    assert not Snapshot.objects.exists()


def test_it_reports_the_state_of_a_snapshot_as_json(register, supervisor):
    queued = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5)
    client = signed_in(supervisor)
    status = client.get(reverse("figures-snapshot-status", args=[queued.pk])).json()
    assert status["state"] == "queued" and status["done"] is False and status["finished"] is False
    assert "queued" in status["label"]
    services.compute_snapshot(queued.pk)
    status = client.get(reverse("figures-snapshot-status", args=[queued.pk])).json()
    assert status["state"] == "done" and status["done"] is True
    assert status["url"] == f"{reverse('figures')}?snapshot={queued.pk}"
    assert client.get(reverse("figures-snapshot-status", args=[999])).status_code == 404


def test_the_page_follows_open_snapshots_with_a_script_and_without_one(register, supervisor):
    computed()
    pending = Snapshot.objects.create(as_of=dt.date(2025, 1, 31), trigger="request", min_cell=5)
    page = signed_in(supervisor).get(reverse("figures") + f"?requested={pending.pk}").content.decode()
    assert f'data-status-url="{reverse("figures-snapshot-status", args=[pending.pk])}"' in page
    assert 'data-follow="true"' in page and 'aria-live="polite"' in page
    assert "<noscript>" in page and "Refresh to see their progress" in page
    assert '<script src="/static/js/figures.js" defer></script>' in page


def test_the_page_says_new_snapshots_are_unavailable_when_the_queue_is_down(register, supervisor, settings):
    computed()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    broker.forget()
    try:
        response = signed_in(supervisor).get(reverse("figures"))
    finally:
        broker.forget()
    page = response.content.decode()
    assert response.status_code == 200
    assert "New snapshots are unavailable at the moment" in page
    assert "Compute new figures" not in page
    assert re.search(r'<span class="stat">19</span>', page)  # the latest figures are still shown


def test_the_page_is_allowed_by_the_strict_content_security_policy(register, supervisor):
    computed()
    response = signed_in(supervisor).get(reverse("figures"))
    page = response.content.decode()
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert " style=" not in page  # no style attributes, inline <svg> included
    assert "<style" not in page
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", page))  # no inline scripts
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_the_page_costs_the_same_queries_with_many_snapshots_as_with_one(register, supervisor):
    computed()
    client = signed_in(supervisor)
    client.get(reverse("figures"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("figures"))
    for _index in range(6):
        computed()
        Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="request", min_cell=5, requested_by=supervisor)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("figures"))
    assert len(one) == len(many), "\n".join(query["sql"] for query in many.captured_queries)


# --- exports -------------------------------------------------------------------------


def test_it_exports_the_exact_figures_to_staff_as_json(register, supervisor):
    snapshot = computed()
    response = signed_in(supervisor).get(reverse("figures-export", args=["json"]))
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="figures-2024-12-31-exact.json"'
    assert json.loads(response.content) == snapshot.exact


def test_the_export_has_no_published_variant_any_more(register, caseworker_b, ngo_b):
    snapshot = computed()
    response = signed_in(caseworker_b).get(reverse("figures-export", args=["json"]) + "?variant=published")
    assert response["Content-Disposition"] == 'attachment; filename="figures-2024-12-31-exact-own-organisation.json"'
    assert snapshot.by_organisation is not None
    assert json.loads(response.content) == snapshot.by_organisation[str(ngo_b.pk)]


def test_it_exports_a_caseworkers_own_organisation_only(register, caseworker_b, ngo_b):
    snapshot = computed()
    response = signed_in(caseworker_b).get(reverse("figures-export", args=["json"]))
    assert "exact-own-organisation" in response["Content-Disposition"]
    assert snapshot.by_organisation is not None
    assert json.loads(response.content) == snapshot.by_organisation[str(ngo_b.pk)]


def test_it_exports_a_tidy_csv(register, supervisor):
    computed()
    client = signed_in(supervisor)
    response = client.get(reverse("figures-export", args=["csv"]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    total = rows[0]
    assert (total["breakdown"], total["reported"], total["repatriated"], total["outstanding"]) == (
        "total",
        "19",
        "7",
        "12",
    )
    oblast = {row["adm1_code"]: row for row in rows if row["breakdown"] == "oblast"}
    assert (oblast["UA-14"]["reported"], oblast["UA-14"]["repatriated"]) == ("12", "6")
    assert (oblast["UA-65"]["reported"], oblast["UA-65"]["repatriated"]) == ("7", "1")
    assert next(row["month"] for row in rows if row["breakdown"] == "month") == "2024-01"


def test_it_exports_hxl_that_libhxl_reads(register, supervisor):
    computed()
    response = signed_in(supervisor).get(reverse("figures-export", args=["hxl"]))
    assert response["Content-Disposition"] == 'attachment; filename="figures-2024-12-31-exact.hxl.csv"'
    source = hxl.data(hxl.input.make_input(io.BytesIO(response.content), hxl.InputOptions(allow_local=True)))
    tags = [column.display_tag for column in source.columns]
    for tag in (
        "#date",
        "#adm1+code",
        "#affected+children+reported",
        "#affected+children+returned",
        "#org+intermediary",
    ):
        assert tag in tags
    rows = list(source)
    by_oblast = {row.get("#adm1+code"): row for row in rows if row.get("#meta+breakdown") == "oblast"}
    assert by_oblast["UA-14"].get("#affected+children+returned") == "6"
    via = {
        row.get("#org+intermediary"): row.get("#affected+children+returned")
        for row in rows
        if row.get("#org+intermediary")
    }
    assert via["qatar"] == "6" and via["unattributed"] == "1"
    assert {row.get("#date") for row in rows} == {"2024-12-31"}


def test_it_exports_a_workbook(register, analyst):
    snapshot = computed()
    response = signed_in(analyst).get(reverse("figures-export", args=["xlsx"]))
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    workbook = load_workbook(io.BytesIO(response.content))
    sheet = workbook["Figures"]
    header = [cell.value for cell in sheet[1]]
    total = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert total["breakdown"] == "total" and total["reported"] == 19 and total["repatriated"] == 7
    about = {row[0].value: row[1].value for row in workbook["About"].iter_rows()}
    assert about["Figures as of"] == "2024-12-31" and about["Snapshot"] == str(snapshot.pk)


def test_exports_need_a_computed_snapshot_and_a_known_format(register, supervisor):
    client = signed_in(supervisor)
    assert client.get(reverse("figures-export", args=["csv"])).status_code == 404
    computed()
    assert client.get(reverse("figures-export", args=["pdf"])).status_code == 404
