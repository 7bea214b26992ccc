"""Case-level exports: supervisors only, every exported case logged, anonymised fields only."""

from __future__ import annotations

import csv
import io

import pytest

from casework import exports
from casework.models import AccessLog
from tests.factories import CaseFactory


@pytest.fixture
def cases(ngo_a, ngo_b):
    mine = [
        CaseFactory(organisation=ngo_a, oblast="UA-65", notes="internal remark"),
        CaseFactory(organisation=ngo_a, oblast="UA-14"),
    ]
    CaseFactory(organisation=ngo_b, oblast="UA-65")  # another organisation's
    return mine


def test_it_exports_the_filtered_list_and_logs_each_case(client, supervisor, cases):
    client.force_login(supervisor)
    response = client.get("/cases/export.csv", {"oblast": "UA-65"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["reference"] for row in rows] == [cases[0].reference]
    assert rows[0]["oblast"] == "UA-65" and rows[0]["age_band"] == "10-13"
    assert "internal remark" not in response.content.decode()
    logged = AccessLog.objects.filter(action="export", door="export")
    assert list(logged.values_list("case_id", "user_id", "ip_address")) == [(cases[0].pk, supervisor.pk, "127.0.0.1")]


@pytest.mark.parametrize("role", ["caseworker", "analyst", "org_admin"])
def test_it_refuses_other_roles(request, client, role, cases):
    client.force_login(request.getfixturevalue(role))
    assert client.get("/cases/export.csv").status_code == 403
    assert not AccessLog.objects.filter(action="export").exists()


def test_it_refuses_a_bad_filter_or_too_many_cases_with_a_message(client, supervisor, cases, monkeypatch):
    client.force_login(supervisor)
    bad = client.get("/cases/export.csv", {"status": "lost"}, follow=True)
    assert "The filter is not valid" in bad.text
    monkeypatch.setattr(exports, "EXPORT_LIMIT", 1)
    many = client.get("/cases/export.csv", follow=True)
    assert "An export holds at most 1 cases" in many.text
    assert not AccessLog.objects.filter(action="export").exists()


def test_it_offers_the_export_to_supervisors_only(client, supervisor, caseworker, cases):
    client.force_login(supervisor)
    assert "/cases/export.csv?" in client.get("/cases/").text
    client.force_login(caseworker)
    assert "/cases/export.csv" not in client.get("/cases/").text
