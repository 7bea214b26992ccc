"""The case page: facts, timeline, the status form each role gets, 404 for others' cases, constant queries."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from casework import services
from tests.factories import CaseFactory, InstitutionFactory


def page_queries(queries) -> list[str]:
    """The page's own queries. The session's renewal (a write at most once a minute) is not the page's cost."""
    bookkeeping = ('UPDATE "django_session"', "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(bookkeeping)]


def url(case) -> str:
    return f"/cases/{case.reference}/"


def move(case, user, to_status, occurred_on, **kwargs):
    return services.change_status(
        case=case,
        actor=services.Actor.for_user(user),
        to_status=to_status,
        occurred_on=occurred_on,
        expected_version=case.version,
        **kwargs,
    )


def status_choices(response) -> list[str]:
    form = response.context["status_form"]
    if not form:
        return []
    values = []
    for value, label in form.fields["to_status"].choices:
        values.extend([choice for choice, _label in label] if isinstance(label, list) else [value])
    assert values[0] == ""  # nothing preselected
    return values[1:]


def test_it_shows_the_facts(client, caseworker, ngo_a):
    case = CaseFactory(
        organisation=ngo_a,
        sex="M",
        birth_year=2011,
        oblast="UA-43",
        placement="boarding_school",
        institution=InstitutionFactory(name="Boarding school No. 9 (synthetic)"),
        risk_military=True,
        notes="Seen at a summer camp; family informed.",
        assigned_to=caseworker,
        displaced_on=dt.date(2022, 9, 1),
        displaced_precision="month",
    )
    client.force_login(caseworker)
    text = client.get(url(case)).text
    for expected in (
        case.reference,
        "Male",
        "2011",
        "age band 10–13 at the report",
        "Autonomous Republic of Crimea",
        "10 Jan 2023",
        "September 2022",
        "Boarding or cadet school",
        "Boarding school No. 9 (synthetic)",
        "Military training or mobilisation risk",
        "Seen at a summer camp; family informed.",
        "NGO A (synthetic)",
    ):
        assert expected in text, expected


def test_it_shows_the_timeline_with_via_notes_recorders_and_corrections(client, caseworker, supervisor, case, qatar):
    move(case, caseworker, "located", dt.date(2023, 2, 1), note="Found through a partner's list.")
    move(case, caseworker, "repatriated", dt.date(2023, 5, 2), via=qatar)
    move(case, supervisor, "located", dt.date(2023, 5, 3), note="Entered on the wrong case.")
    client.force_login(caseworker)
    response = client.get(url(case))
    text = response.text
    assert [change.to_status for change in response.context["history"]] == ["located", "repatriated", "located"]
    assert "Via State of Qatar" in text
    assert "Found through a partner&#x27;s list." in text
    assert "Recorded by caseworker" in text and "Recorded by supervisor" in text
    assert text.count('class="badge correction"') == 1
    assert "2 May 2023" in text  # when it happened
    assert 'id="timeline"' in text


def test_it_marks_a_duplicate_with_a_link_to_the_surviving_case(client, supervisor, ngo_a):
    survivor = CaseFactory(organisation=ngo_a)
    case = CaseFactory(organisation=ngo_a)
    move(case, supervisor, "duplicate", dt.date(2023, 2, 1), duplicate_of=survivor)
    client.force_login(supervisor)
    assert f'href="/cases/{survivor.reference}/"' in client.get(url(case)).text


def test_it_offers_a_caseworker_forward_moves_only(client, caseworker, case):
    move(case, caseworker, "located", dt.date(2023, 2, 1))
    client.force_login(caseworker)
    response = client.get(url(case))
    assert status_choices(response) == ["return_requested", "repatriated", "reunified"]
    assert 'name="duplicate_of"' not in response.text
    assert f'action="/cases/{case.reference}/status/"' in response.text
    assert f'name="version" value="{case.version}"' in response.text


def test_it_offers_a_supervisor_corrections_duplicate_and_withdraw(client, supervisor, case):
    move(case, supervisor, "located", dt.date(2023, 2, 1))
    client.force_login(supervisor)
    response = client.get(url(case))
    assert set(status_choices(response)) == {
        "reported",
        "verified",
        "return_requested",
        "repatriated",
        "reunified",
        "duplicate",
        "withdrawn",
    }
    assert 'name="duplicate_of"' in response.text
    assert '<optgroup label="Correction (back)">' in response.text


def test_it_tells_a_caseworker_when_no_move_is_left(client, caseworker, ngo_a):
    case = CaseFactory(organisation=ngo_a, status="withdrawn")
    client.force_login(caseworker)
    response = client.get(url(case))
    assert response.context["status_form"] is None
    assert "Your role cannot move this case any further." in response.text


def test_it_shows_an_org_admin_the_case_but_no_status_form_or_edit_link(client, org_admin, case):
    client.force_login(org_admin)
    response = client.get(url(case))
    assert response.status_code == 200
    assert response.context["status_form"] is None
    assert "/edit/" not in response.text and "/status/" not in response.text


def _without_tokens(text: str, reference: str) -> str:
    # The page repeats the requested path (the language form's "next") and a fresh CSRF token.
    return re.sub(r'value="[A-Za-z0-9]{64}"', "", text).replace(reference, "REF")


def test_it_answers_404_for_another_organisations_case(client, caseworker_b, case):
    client.force_login(caseworker_b)
    response = client.get(url(case))
    assert response.status_code == 404
    assert "case" not in response.context
    assert "NGO A" not in response.text


def test_it_answers_404_for_an_unknown_reference_exactly_as_for_a_foreign_one(client, caseworker_b, case):
    client.force_login(caseworker_b)
    foreign = client.get(url(case))
    unknown = client.get("/cases/C-0000-0000/")
    assert unknown.status_code == foreign.status_code == 404
    assert _without_tokens(unknown.text, "C-0000-0000") == _without_tokens(foreign.text, case.reference)


def test_it_refuses_an_analyst_even_for_an_own_case(client, analyst, case):
    client.force_login(analyst)
    response = client.get(url(case))
    assert response.status_code == 403
    assert "case" not in response.context


def test_it_redirects_a_reference_typed_in_lower_case(client, caseworker, case):
    client.force_login(caseworker)
    response = client.get(f"/cases/{case.reference.lower()}/")
    assert response.status_code == 302 and response["Location"] == url(case)


def test_it_lists_edits_of_the_record_by_field_name(client, caseworker, case):
    services.update_case(
        case=case, actor=services.Actor.for_user(caseworker), expected_version=1, values={"placement": "camp"}
    )
    client.force_login(caseworker)
    text = client.get(url(case)).text
    assert "1 edit of the record" in text
    assert "Placement" in text


def test_it_costs_the_same_queries_for_one_change_or_ten(client, caseworker, supervisor, case, qatar):
    client.force_login(supervisor)

    def count() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(case))
        assert response.status_code == 200
        sql = page_queries(queries)
        return len(sql), "\n".join(sql)

    move(case, caseworker, "verified", dt.date(2023, 2, 1))
    count()
    one, _ = count()
    day = dt.date(2023, 2, 1)
    for _round in range(3):
        move(case, caseworker, "located", day, note="n")
        move(case, caseworker, "repatriated", day, via=qatar)
        move(case, supervisor, "verified", day, note="correction")
    services.update_case(
        case=case, actor=services.Actor.for_user(caseworker), expected_version=case.version, values={"sex": "M"}
    )
    many, sql = count()
    # session, user, case (with organisation, assignee, institution), history, edits, the access-log row
    # (with the audit chain's head locked and moved on),
    # intermediaries for the status form; a supervisor also sees the live shares and the partners to share with;
    # the lists the case is on (their answers too, when it is on one), the follow-ups (with their people),
    # the people a new follow-up may go to, and whether the case is linked to the same child elsewhere
    assert many == one == 15, sql


@pytest.mark.parametrize("role_fixture", ["caseworker", "supervisor", "org_admin"])
def test_it_shows_the_case_to_every_reading_role(client, request, role_fixture, case):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(url(case)).status_code == 200
