"""Figures per intermediary under "lists" in the figures JSON, on a hand-built history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation
from partners.lists import services
from partners.lists.figures import list_figures
from partners.models import CaseList
from reports import services as report_services
from reports.models import Snapshot
from tests.factories import CaseFactory, UserFactory
from tests.list_helpers import answer, sent_list

pytestmark = pytest.mark.django_db
D = dt.date


@pytest.fixture
def history(ngo_a, ngo_b):
    qatar = Organisation.objects.get(slug="qatar")
    vatican = Organisation.objects.get(slug="vatican")
    c = [CaseFactory(organisation=ngo_a, reported_on=D(2023, 6, 1)) for _n in range(5)]
    d = [CaseFactory(organisation=ngo_b, reported_on=D(2023, 6, 1)) for _n in range(2)]
    first = sent_list(ngo_a, qatar, c[:4], sent_on=D(2024, 1, 10))
    second = sent_list(ngo_a, qatar, [c[3], c[4]], sent_on=D(2024, 3, 1))  # c4 asked about again
    to_vatican = sent_list(ngo_b, vatican, d, sent_on=D(2024, 2, 1))
    answer(first, c[0], "received", D(2024, 1, 20))
    answer(first, c[0], "returned", D(2024, 3, 10))  # 60 days after the first list
    answer(first, c[1], "located", D(2024, 2, 1))
    answer(first, c[2], "no_answer", D(2024, 2, 1))  # says nothing: still unanswered
    answer(second, c[3], "returned", D(2024, 4, 30))  # 111 days after the first list that named the child
    answer(to_vatican, d[0], "refused", D(2024, 3, 1))
    services.close_list(case_list=to_vatican, by=None)
    CaseList.objects.filter(pk=to_vatican.pk).update(closed_at=dt.datetime(2024, 5, 10, 9, tzinfo=dt.UTC))
    return {"ngo_b": ngo_b}


def test_it_counts_each_intermediarys_children_answers_returns_and_waiting(history):
    assert list_figures(as_of=D(2024, 6, 30)) == {
        "qatar": {
            "children_on_lists": 5,
            "answered": 3,
            "located": 3,
            "returned": 2,
            "median_days_to_return": 85.5,
            "unanswered_90_days": 2,
        },
        "vatican": {
            "children_on_lists": 2,
            "answered": 1,
            "located": 0,
            "returned": 0,
            "median_days_to_return": None,
            "unanswered_90_days": 0,  # the list was closed before the day
        },
    }


def test_it_counts_only_what_was_sent_and_answered_by_the_day(history):
    assert list_figures(as_of=D(2024, 2, 15)) == {
        "qatar": {
            "children_on_lists": 4,
            "answered": 2,
            "located": 1,
            "returned": 0,
            "median_days_to_return": None,
            "unanswered_90_days": 0,
        },
        "vatican": {
            "children_on_lists": 2,
            "answered": 0,
            "located": 0,
            "returned": 0,
            "median_days_to_return": None,
            "unanswered_90_days": 0,
        },
    }
    assert list_figures(as_of=D(2023, 12, 31)) == {}
    # Vatican's list: sent 90 days before 1 May, closed on 10 May; one child never answered.
    assert list_figures(as_of=D(2024, 4, 30))["vatican"]["unanswered_90_days"] == 0
    assert list_figures(as_of=D(2024, 5, 1))["vatican"]["unanswered_90_days"] == 1
    assert list_figures(as_of=D(2024, 5, 9))["vatican"]["unanswered_90_days"] == 1
    assert list_figures(as_of=D(2024, 5, 10))["vatican"]["unanswered_90_days"] == 0


def test_it_gives_one_organisations_lists_only(history):
    assert set(list_figures(as_of=D(2024, 6, 30), organisation_id=history["ngo_b"].pk)) == {"vatican"}


def test_it_costs_one_query_however_many_lists(history, ngo_a):
    with CaptureQueriesContext(connection) as few:
        list_figures(as_of=D(2024, 6, 30))
    sent_list(
        ngo_a, Organisation.objects.get(slug="south-africa"), [CaseFactory(organisation=ngo_a)], sent_on=D(2024, 6, 1)
    )
    with CaptureQueriesContext(connection) as more:
        list_figures(as_of=D(2024, 6, 30))
    assert len(few.captured_queries) == len(more.captured_queries) == 1


def test_a_snapshot_has_them_in_its_exact_figures_and_the_page_shows_them(history, client, ngo_a):
    snapshot = Snapshot.objects.create(as_of=D(2024, 6, 30), trigger="command", min_cell=5)
    assert report_services.compute_snapshot(snapshot.pk) == "done"
    snapshot.refresh_from_db()
    assert snapshot.exact["lists"]["qatar"]["returned"] == 2
    assert set(snapshot.by_organisation[str(history["ngo_b"].pk)]["lists"]) == {"vatican"}
    client.force_login(UserFactory(username="analyst-lists", organisation=ngo_a, role="analyst"))
    page = client.get(f"/figures/?snapshot={snapshot.pk}")
    assert page.status_code == 200
    rows = {row["key"]: row for row in page.context["tables"]["lists"]}
    assert set(rows) == {"qatar"}  # an analyst of NGO A sees NGO A's lists only
    assert "Median days from sending to return" in page.text and "85.5" in page.text


def test_a_release_counts_children_on_lists_bounded_to_two_intermediaries(history, ngo_a, ngo_b):
    """The release's cells: a child (two cases confirmed as one) counts once per intermediary, in at most its
    first two intermediaries; days to return run from the first list to that intermediary naming it."""
    from linkage import services as linkage_services
    from partners.lists.figures import list_release_series

    before = list_release_series(as_of=D(2024, 6, 30))
    assert before["qatar"] == {
        "children_on_lists": 5,
        "answered": 3,
        "located": 3,
        "returned": 2,
        "unanswered_90_days": 2,
        "days_to_return": {"60": 1, "111": 1},
    }
    # NGO B reports c0's child again; Qatar is asked about it on a later list, then South Africa and the Vatican.
    c0 = CaseList.objects.get(sent_on=D(2024, 1, 10)).items.order_by("id").first().case
    again = CaseFactory(organisation=ngo_b, reported_on=D(2023, 7, 1))
    linkage_services.decide_by_command(case_a=c0, case_b=again, decision="same")
    sent_list(ngo_b, Organisation.objects.get(slug="qatar"), [again], sent_on=D(2024, 4, 1))
    sent_list(ngo_b, Organisation.objects.get(slug="south-africa"), [again], sent_on=D(2024, 4, 2))
    sent_list(ngo_b, Organisation.objects.get(slug="vatican"), [again], sent_on=D(2024, 4, 3))
    after = list_release_series(as_of=D(2024, 6, 30))
    assert after["qatar"] == before["qatar"]  # the same child: still 5 children, its return still 60 days
    # Its first two intermediaries are Qatar (January) and South Africa (2 April): the Vatican is not counted.
    assert after["south-africa"]["children_on_lists"] == 1
    assert after["vatican"] == before["vatican"]
    # The internal figures count the cases on lists, without the bound.
    assert list_figures(as_of=D(2024, 6, 30))["vatican"]["children_on_lists"] == 3


def protection_measures():
    from reports.protection import LIST_MEASURES

    return LIST_MEASURES


def test_a_release_publishes_the_lists_protected_and_its_files_and_pages_show_them(history, client):
    import csv
    import io

    from reports import exports
    from reports.releases import release_figures_from_command

    release, made = release_figures_from_command(as_of=D(2024, 6, 30))
    assert made
    # The exact cells are kept with the release's snapshot, never published.
    assert release.snapshot.series["lists"]["qatar"]["children_on_lists"] == 5
    published = release.figures["lists"]
    intermediaries = set(Organisation.objects.filter(kind="intermediary").values_list("slug", flat=True))
    assert set(published) == intermediaries  # every intermediary has its row, lists or not
    for cell in published.values():
        chain = [cell[name] or 0 for name in ("children_on_lists", "answered", "located", "returned")]
        assert chain == sorted(chain, reverse=True)
        # The history's counts are all under k = 5 or noised: never the exact 2 of Vatican's children.
        assert all(cell[name] is None or cell[name] >= 5 for name in protection_measures())
    assert release.parameters["lists_sigma"] > release.sigma
    rows = list(csv.DictReader(io.StringIO(exports.release_csv(release))))
    lists_rows = [row for row in rows if row["breakdown"] == "lists"]
    assert {row["intermediary"] for row in lists_rows} == intermediaries
    assert all(row["protection"] == "protected" for row in lists_rows)
    page = client.get("/public/figures/").content.decode()
    assert "Lists to intermediaries" in page and "Children on lists" in page
