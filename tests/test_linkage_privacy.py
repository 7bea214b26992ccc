"""No identifying value reaches the database, the logs or any response (DESIGN.md sections 2 and 11).

Known synthetic details are typed in the case form (create and edit) and given in an import file; then
every table is read whole, every SQL statement sent is searched, with its parameters, and so are the
log output, the command's output, the file of references and every page that was answered. The values
are invented for this test (no one is named so).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from casework.models import Case
from linkage.models import BlockKey, Candidate, CaseEncoding
from tests.factories import UserFactory

TYPED = {
    "given_name": "Зоресвітла",
    "family_name": "Вигаданченко",
    "patronymic": "Світозарівна",
    "birth_date": "2011-07-23",
    "birth_place": "с. Тестопілля",
}
IMPORTED = {
    "given_name": "Yasnozira",
    "family_name": "Nevidomska",
    "patronymic": "Hordiivna",
    "birth_date": "2013-05",
    "birth_place": "Prydumanivka",
}
# The values, and what normalisation makes of them, in every spelling a leak could take.
FORBIDDEN = [
    "Зоресвітла", "зоресвітла", "zoresvitla", "Вигаданченко", "vihadanchenko", "vygadanchenko", "vyhadanchenko",
    "Світозарівна",
    "svitozar", "2011-07-23", "23.07.2011", "2011-7-23", "Тестопілля", "testopil",
    "Yasnozira", "iasnozira", "yasnozira", "Nevidomska", "nevidomska", "Hordiivna", "hordi", "2013-05",
    "Prydumanivka", "pridumanivka",
]  # fmt: skip


def _leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [value for value in FORBIDDEN if value.lower() in lowered]


def _every_stored_value() -> list[str]:
    texts: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        texts.append(bytes(value).decode("utf-8", errors="ignore"))
                        texts.append(bytes(value).hex())
                    elif value is not None:
                        texts.append(str(value))
    return texts


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_identifying_value_reaches_the_database_the_logs_or_a_response(
    client, caseworker, ngo_a, ngo_b, logs, tmp_path, capsys, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the import's search runs here
    ngo_a.is_host = True
    ngo_a.save()
    host_supervisor = UserFactory(username="host-supervisor", organisation=ngo_a, role=Role.SUPERVISOR)
    client.force_login(caseworker)
    answered: list[str] = []
    base = {"sex": "F", "oblast": "UA-14", "reported_on": "2023-04-02", "source": "family", "notes": ""}
    with CaptureQueriesContext(connection) as queries:
        created = client.post("/cases/new/", {**base, **TYPED})
        assert created.status_code == 302
        case = Case.objects.get()
        for url in (created["Location"], f"/cases/{case.reference}/edit/", "/cases/", "/"):
            response = client.get(url)
            assert response.status_code == 200, url
            answered.append(response.text)
        # An edit that changes only the family name, and one refused (the date is wrong): nothing echoed.
        edited = client.post(
            f"/cases/{case.reference}/edit/", {**base, "version": case.version, "family_name": "Вигаданченко-Нова"}
        )
        assert edited.status_code == 302
        refused = client.post("/cases/new/", {**base, **TYPED, "birth_date": "2011-07-32"})
        assert refused.status_code == 400
        answered += [refused.text, client.get(f"/cases/{case.reference}/").text]

        cases_file = tmp_path / "cases.csv"
        with cases_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source_ref", "sex", "oblast", "reported_on", *IMPORTED])
            writer.writerow(["ORG-1", "F", "UA-65", "2023-05-06", *IMPORTED.values()])
            # The same child as the form's, as another organisation writes it: a pair for the host to review.
            writer.writerow(["ORG-2", "F", "UA-14", "2023-05-06", "Zoresvitla", "Vyhadanchenko", "", "2011-07-23", ""])
        references = tmp_path / "references.csv"
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command(
                "import_cases", str(cases_file), organisation="ngo-b", references_out=str(references), stdout=out
            )
        answered += [out.getvalue(), references.read_text(encoding="utf-8")]
        bad_file = tmp_path / "bad.csv"
        bad_file.write_text(
            "source_ref,sex,oblast,reported_on,given_name,birth_date\nORG-2,F,UA-65,2023-05-06,Yasnozira,2013-05-45\n",
            encoding="utf-8",
        )
        with pytest.raises(Exception):  # noqa: B017 (CommandError: the file is refused)
            call_command("import_cases", str(bad_file), organisation="ngo-a", stdout=out, stderr=out)
        answered.append(out.getvalue())
        # The host's supervisor reviews the pair: the queue, the pair's page, a decision, the case page.
        pair = Candidate.objects.get(across_organisations=True)
        client.force_login(host_supervisor)
        for url in ("/links/", f"/links/{pair.pk}/", "/links/?state=decided"):
            response = client.get(url)
            assert response.status_code == 200, url
            answered.append(response.text)
        decided = client.post(f"/links/{pair.pk}/decide/", {"decision": "same", "expected": ""}, follow=True)
        answered += [decided.text, client.get(f"/cases/{case.reference}/").text]
        find = io.StringIO()
        call_command("find_duplicates", "--min-score", "0", stdout=find)
        call_command("link_cases", pair.case_a.reference, pair.case_b.reference, "--different", stdout=find)
        answered.append(find.getvalue())

    # The details were received: one encoding per case that had some, with its blocking keys.
    assert CaseEncoding.objects.count() == 3 and BlockKey.objects.count() > 10
    stored = CaseEncoding.objects.get(case=case)
    assert stored.given_name is not None and stored.family_name is not None and stored.birth_place is not None

    captured = capsys.readouterr()
    places = {
        "the database": _every_stored_value(),
        "the SQL sent": [query["sql"] for query in queries.captured_queries],
        "the logs": [logs.text, captured.out, captured.err],
        "the responses and files": answered,
    }
    for where, texts in places.items():
        found = sorted({leak for text in texts for leak in _leaks(text)})
        assert found == [], f"{where} holds {found}"


def test_the_admin_lists_no_linkage_model():
    registered = {model._meta.app_label for model in admin.site._registry}
    assert "linkage" not in registered
    assert apps.get_app_config("linkage").get_models()  # there are models, and none is in the admin


def test_the_references_file_ties_source_refs_to_references(ngo_a, tmp_path):
    cases_file = tmp_path / "cases.csv"
    cases_file.write_text(
        "source_ref,sex,oblast,reported_on\nORG-1,F,UA-65,2023-05-06\nORG-2,M,UA-14,2023-05-07\n", encoding="utf-8"
    )
    references = tmp_path / "refs.csv"
    call_command(
        "import_cases", str(cases_file), organisation="ngo-a", references_out=str(references), stdout=io.StringIO()
    )
    rows = list(csv.reader(references.open(encoding="utf-8")))
    assert rows[0] == ["source_ref", "reference"]
    by_ref = dict(rows[1:])
    assert set(by_ref) == {"ORG-1", "ORG-2"}
    assert {case.reference for case in Case.objects.all()} == set(by_ref.values())
    assert (references.stat().st_mode & 0o777) == 0o600


def test_a_references_file_that_exists_stops_the_import_before_anything_is_written(ngo_a, tmp_path):
    from django.core.management.base import CommandError

    cases_file = tmp_path / "cases.csv"
    cases_file.write_text("source_ref,sex,oblast,reported_on\nORG-1,F,UA-65,2023-05-06\n", encoding="utf-8")
    existing = tmp_path / "refs.csv"
    existing.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(CommandError, match="exists"):
        call_command("import_cases", str(cases_file), organisation="ngo-a", references_out=str(existing))
    with pytest.raises(CommandError, match="Cannot create"):
        call_command(
            "import_cases", str(cases_file), organisation="ngo-a", references_out=str(tmp_path / "no" / "such.csv")
        )
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert not Case.objects.exists()


def test_a_refused_import_leaves_no_references_file(ngo_a, tmp_path):
    from django.core.management.base import CommandError

    cases_file = tmp_path / "cases.csv"
    cases_file.write_text("source_ref,sex,oblast,reported_on,birth_date\nORG-1,F,UA-65,2023-05-06,May 2013\n")
    references = tmp_path / "refs.csv"
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_cases", str(cases_file), organisation="ngo-a", references_out=str(references), stderr=err)
    assert "cases.csv:2: birth_date: Give the date of birth as YYYY-MM-DD" in err.getvalue()
    assert "May 2013" not in err.getvalue()
    assert not Path(references).exists() and not Case.objects.exists()
