"""Recording a status change from the case page: through StatusChangeForm and the service, never around them."""

from __future__ import annotations

import datetime as dt

import pytest

from casework import services
from casework.models import Case, StatusChange
from tests.factories import CaseFactory


def url(case) -> str:
    return f"/cases/{case.reference}/status/"


def post(client, case, **data):
    payload = {"version": case.version, "occurred_on": "2023-03-01", "note": "", "via": "", **data}
    return client.post(url(case), payload)


def test_it_moves_a_case_to_located_then_repatriated_via_qatar(client, caseworker, case):
    client.force_login(caseworker)
    response = post(client, case, to_status="located", occurred_on="2023-02-01")
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{case.reference}/#timeline"
    case.refresh_from_db()
    assert case.status == "located" and case.version == 2
    response = post(client, case, to_status="repatriated", occurred_on="2023-06-01", via="qatar", note="Back home.")
    assert response.status_code == 302
    change = StatusChange.objects.get(case=case, to_status="repatriated")
    assert change.via.slug == "qatar" and change.recorded_by == caseworker and change.note == "Back home."
    page = client.get(f"/cases/{case.reference}/")
    assert "Status changed to “Repatriated”." in page.text
    assert "Via State of Qatar" in page.text


def test_it_refuses_a_backward_move_from_a_caseworker(client, caseworker, case):
    Case.objects.filter(pk=case.pk).update(status="located")
    case.refresh_from_db()
    client.force_login(caseworker)
    response = post(client, case, to_status="reported", note="oops")
    assert response.status_code == 400
    assert "Select a valid choice" in response.text
    assert not StatusChange.objects.exists()


def test_it_asks_a_supervisor_for_the_reason_of_a_correction_next_to_the_note(client, supervisor, case):
    Case.objects.filter(pk=case.pk).update(status="located")
    case.refresh_from_db()
    client.force_login(supervisor)
    response = post(client, case, to_status="verified")
    assert response.status_code == 400
    form = response.context["status_form"]
    assert form.errors["note"] == ["A correction needs a reason: say why the status goes back."]
    assert 'id="id_note_error"' in response.text
    assert post(client, case, to_status="verified", note="Located in error.").status_code == 302
    assert StatusChange.objects.get().is_correction


def test_it_refuses_a_note_with_a_phone_number_and_says_why(client, caseworker, case):
    client.force_login(caseworker)
    response = post(client, case, to_status="verified", note="Call the aunt on +380 67 123 45 67")
    assert response.status_code == 400
    assert "looks like a phone number" in response.text
    assert "123 45 67" not in response.text.split('id="id_note"')[0]  # the message does not repeat the value
    assert not StatusChange.objects.exists()


def test_it_refuses_a_date_in_the_future_next_to_the_date(client, caseworker, case):
    client.force_login(caseworker)
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    response = post(client, case, to_status="verified", occurred_on=future)
    assert response.status_code == 400
    assert response.context["status_form"].errors["occurred_on"] == ["The date is in the future."]


def test_it_lets_a_supervisor_mark_a_duplicate(client, supervisor, ngo_a, case):
    survivor = CaseFactory(organisation=ngo_a)
    client.force_login(supervisor)
    response = post(client, case, to_status="duplicate", duplicate_of=survivor.reference.lower())
    assert response.status_code == 302
    assert StatusChange.objects.get().duplicate_of == survivor


def test_it_shows_a_conflict_when_the_case_moved_meanwhile(client, caseworker, supervisor, case):
    client.force_login(caseworker)
    loaded_version = case.version
    services.change_status(
        case=case,
        actor=services.Actor.for_user(supervisor),
        to_status="verified",
        occurred_on=dt.date(2023, 2, 1),
        expected_version=loaded_version,
    )
    response = client.post(url(case), {"version": loaded_version, "to_status": "verified", "occurred_on": "2023-02-02"})
    assert response.status_code == 409
    assert "Nothing was saved." in response.text
    assert "Status Reported → Verified by supervisor" in response.text
    assert f'href="/cases/{case.reference}/"' in response.text
    assert StatusChange.objects.count() == 1


def test_it_shows_a_conflict_when_the_service_finds_the_version_stale(client, caseworker, case, monkeypatch):
    # The version read by the view can pass and the service still refuse: a write that landed in between.
    client.force_login(caseworker)
    real = services.change_status

    def racing(**kwargs):
        services.update_case(
            case=Case.objects.get(pk=case.pk),
            actor=services.Actor.for_user(caseworker),
            expected_version=1,
            values={"sex": "M"},
        )
        return real(**kwargs)

    monkeypatch.setattr(services, "change_status", racing)
    response = post(client, case, to_status="verified")
    assert response.status_code == 409
    assert "Sex edited by caseworker" in response.text
    assert not StatusChange.objects.exists()


@pytest.mark.parametrize("role_fixture", ["org_admin", "analyst"])
def test_it_refuses_roles_that_may_not_move_cases(client, request, role_fixture, case):
    client.force_login(request.getfixturevalue(role_fixture))
    assert post(client, case, to_status="verified").status_code == 403
    assert not StatusChange.objects.exists()


def test_it_answers_404_for_another_organisations_case(client, caseworker_b, case):
    client.force_login(caseworker_b)
    assert post(client, case, to_status="verified").status_code == 404
    assert not StatusChange.objects.exists()


def test_it_only_accepts_a_post(client, caseworker, case):
    client.force_login(caseworker)
    assert client.get(url(case)).status_code == 405
