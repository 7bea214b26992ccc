"""Saved filters on the case list (each user's own) and the printable one-page case summary."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from casework import services
from casework.models import AccessLog, SavedFilter, Task, TaskKind
from tests.factories import CaseFactory


def test_a_user_saves_a_filter_and_finds_it_on_the_list(client, caseworker):
    client.force_login(caseworker)
    response = client.post(
        "/cases/filters/", {"name": "Crimea, verified", "filter": "oblast=UA-43&status=verified&page=3&evil=1"}
    )
    saved = SavedFilter.objects.get(user=caseworker)
    # Only the list's own filters, never the page or anything else of the request.
    assert saved.query == "oblast=UA-43&status=verified"
    assert response["Location"] == "/cases/?oblast=UA-43&status=verified"
    page = client.get("/cases/")
    assert "Crimea, verified" in page.text and 'href="/cases/?oblast=UA-43&amp;status=verified"' in page.text
    # The same name again replaces it.
    client.post("/cases/filters/", {"name": "Crimea, verified", "filter": "oblast=UA-43"})
    assert list(SavedFilter.objects.values_list("query", flat=True)) == ["oblast=UA-43"]


def test_bad_filters_and_names_are_refused_and_nothing_is_saved(client, caseworker):
    client.force_login(caseworker)
    for data in (
        {"name": "", "filter": "status=verified"},
        {"name": "x" * 200, "filter": "status=verified"},
        {"name": "Call +380 67 123 45 67", "filter": "status=verified"},
        {"name": "Nothing", "filter": "page=2"},
        {"name": "Bad status", "filter": "status=lost"},
        {"name": "Bad oblast", "filter": "oblast=UA-99"},
        {"name": "Long", "filter": "q=" + "A" * 5000},
    ):
        response = client.post("/cases/filters/", data, follow=True)
        assert response.status_code in (200, 400), data
        assert 'class="message error"' in response.text, data
    assert not SavedFilter.objects.exists()


def test_a_saved_filter_is_its_owners_only(client, caseworker, supervisor):
    mine = SavedFilter.objects.create(user=caseworker, name="Mine only", query="status=verified")
    client.force_login(supervisor)
    assert "Mine only" not in client.get("/cases/").text
    assert client.post(f"/cases/filters/{mine.pk}/delete/").status_code == 404
    assert SavedFilter.objects.filter(pk=mine.pk).exists()
    client.force_login(caseworker)
    assert client.post(f"/cases/filters/{mine.pk}/delete/").status_code == 302
    assert not SavedFilter.objects.exists()


def test_the_summary_shows_facts_timeline_and_follow_ups_without_free_text(client, caseworker, supervisor, ngo_a):
    case = CaseFactory(
        organisation=ngo_a, assigned_to=caseworker, notes="Synthetic note that must not be printed", oblast="UA-65"
    )
    services.change_status(
        case=case, actor=services.Actor.for_user(caseworker), to_status="repatriated",
        occurred_on=dt.date(2023, 5, 1), expected_version=case.version, note="Synthetic history note",
    )  # fmt: skip
    client.force_login(caseworker)
    response = client.get(f"/cases/{case.reference}/summary/")
    assert response.status_code == 200
    text = response.text
    assert case.reference in text and "Kherson oblast" in text and "Repatriated" in text
    assert text.count("Check on the child after the return") == 3
    assert "Synthetic note" not in text and "Synthetic history note" not in text
    assert "css/summary.css" in text
    assert AccessLog.objects.filter(case=case, action="view", user=caseworker).exists()
    assert Task.objects.filter(case=case, kind=TaskKind.CHECK_AFTER_RETURN).count() == 3


def test_the_summary_of_another_organisations_case_is_not_found(client, caseworker_b, analyst, ngo_a):
    case = CaseFactory(organisation=ngo_a)
    client.force_login(caseworker_b)
    assert client.get(f"/cases/{case.reference}/summary/").status_code == 404
    client.force_login(analyst)
    assert client.get(f"/cases/{case.reference}/summary/").status_code == 403
    assert not AccessLog.objects.filter(case=case).exists()


def test_the_print_stylesheet_hides_the_page_around_the_summary():
    from pathlib import Path

    from django.conf import settings

    css = (Path(settings.BASE_DIR) / "static" / "css" / "summary.css").read_text()
    print_rules = css[css.index("@media print") :]
    assert ".site-header" in print_rules and ".no-print" in print_rules and "@page" in print_rules
    assert timezone.now()  # the page prints its own time: no cache of an old copy
