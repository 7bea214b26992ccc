"""Lists to intermediaries: composing, sending, answers, closing, and the status moves answers cause."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Organisation, Role
from casework import services as case_services
from casework.models import Case, Status, StatusChange
from partners.lists import services
from partners.models import CaseList, ListAnswer, ListItem, ListState, Share, ShareScope
from tests.api_helpers import make_token, share
from tests.factories import CaseFactory, UserFactory
from tests.list_helpers import answer, sent_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def cases(ngo_a):
    return [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(3)]


def test_it_lets_only_the_sending_organisations_supervisors_compose_send_and_close(
    ngo_a, ngo_b, qatar, supervisor, caseworker, org_admin, cases
):
    other_supervisor = UserFactory(username="sup-b", organisation=ngo_b, role=Role.SUPERVISOR)
    for user in (caseworker, org_admin, other_supervisor):
        with pytest.raises(PermissionDenied):
            services.create_list(organisation=ngo_a, intermediary=qatar, created_by=user, cases=cases)
    draft = services.create_list(organisation=ngo_a, intermediary=qatar, created_by=supervisor, cases=cases)
    for user in (caseworker, other_supervisor):
        with pytest.raises(PermissionDenied):
            services.send_list(case_list=draft, sent_on=dt.date(2024, 3, 1), by=user)
    services.send_list(case_list=draft, sent_on=dt.date(2024, 3, 1), by=supervisor)
    with pytest.raises(PermissionDenied):
        services.close_list(case_list=draft, by=caseworker)
    assert CaseList.objects.get(pk=draft.pk).state == ListState.SENT


def test_it_refuses_a_list_to_an_organisation_that_is_no_intermediary(ngo_a, ngo_b, supervisor, cases):
    with pytest.raises(ValidationError) as refused:
        services.create_list(organisation=ngo_a, intermediary=ngo_b, created_by=supervisor, cases=cases)
    assert "intermediary" in refused.value.message_dict
    assert not CaseList.objects.exists()


def test_it_refuses_another_organisations_cases(ngo_a, ngo_b, qatar, supervisor):
    foreign = CaseFactory(organisation=ngo_b)
    with pytest.raises(ValidationError):
        services.create_list(organisation=ngo_a, intermediary=qatar, created_by=supervisor, cases=[foreign])
    assert not CaseList.objects.exists()


def test_it_screens_the_note(ngo_a, qatar, supervisor, cases):
    with pytest.raises(ValidationError) as refused:
        services.create_list(
            organisation=ngo_a, intermediary=qatar, created_by=supervisor, cases=cases, note="call +380 67 123 4567"
        )
    assert "note" in refused.value.message_dict


def test_it_fixes_the_items_once_sent_and_refuses_sending_twice_or_empty(ngo_a, qatar, supervisor, cases):
    empty = services.create_list(organisation=ngo_a, intermediary=qatar, created_by=supervisor)
    with pytest.raises(ValidationError):
        services.send_list(case_list=empty, sent_on=dt.date(2024, 3, 1), by=supervisor)
    made = sent_list(ngo_a, qatar, cases[:2], by=supervisor)
    with pytest.raises(ValidationError):
        services.add_cases(case_list=made, cases=[cases[2]], by=supervisor)
    with pytest.raises(ValidationError):
        services.remove_cases(case_list=made, case_ids=[cases[0].pk], by=supervisor)
    with pytest.raises(ValidationError):
        services.send_list(case_list=made, sent_on=dt.date(2024, 3, 1), by=supervisor)
    assert ListItem.objects.filter(case_list=made).count() == 2


def test_it_refuses_a_sending_date_in_the_future(ngo_a, qatar, supervisor, cases):
    draft = services.create_list(organisation=ngo_a, intermediary=qatar, created_by=supervisor, cases=cases)
    with pytest.raises(ValidationError) as refused:
        services.send_list(case_list=draft, sent_on=dt.date.today() + dt.timedelta(days=1), by=supervisor)
    assert "sent_on" in refused.value.message_dict
    assert CaseList.objects.get(pk=draft.pk).state == ListState.DRAFT


def test_it_shares_the_cases_for_answers_until_closed_unless_another_open_list_or_share_keeps_them(
    ngo_a, qatar, supervisor, cases
):
    kept_by_share = cases[2]
    share(kept_by_share, qatar, "read")
    first = sent_list(ngo_a, qatar, cases, by=supervisor)
    live = dict(Share.objects.active().filter(partner=qatar).values_list("case_id", "scope"))
    assert live == {cases[0].pk: "answer", cases[1].pk: "answer", kept_by_share.pk: "read"}
    second = sent_list(ngo_a, qatar, [cases[1]], by=supervisor)  # a later list asks again about one child

    services.close_list(case_list=first, by=supervisor)

    live = dict(Share.objects.active().filter(partner=qatar).values_list("case_id", "scope"))
    assert live == {cases[1].pk: "answer", kept_by_share.pk: "read"}
    services.close_list(case_list=second, by=supervisor)
    live = dict(Share.objects.active().filter(partner=qatar).values_list("case_id", "scope"))
    assert live == {kept_by_share.pk: "read"}
    with pytest.raises(ValidationError):
        services.close_list(case_list=second, by=supervisor)


def test_it_moves_the_case_to_located_and_repatriated_via_the_intermediary(ngo_a, qatar, supervisor, caseworker, cases):
    made = sent_list(ngo_a, qatar, cases, by=supervisor)
    case = cases[0]
    answer(made, case, "received", dt.date(2024, 3, 10), user=caseworker)
    case.refresh_from_db()
    assert case.status == Status.REPORTED

    located = answer(made, case, "located", dt.date(2024, 4, 1), user=caseworker)
    case.refresh_from_db()
    assert case.status == Status.LOCATED
    assert located.status_change is not None and located.status_change.to_status == Status.LOCATED

    returned = answer(made, case, "returned", dt.date(2024, 6, 1), user=caseworker)
    case.refresh_from_db()
    change = returned.status_change
    assert case.status == Status.REPATRIATED
    assert change is not None and change.via == qatar and change.occurred_on == dt.date(2024, 6, 1)
    assert str(made.pk) in change.note
    item = ListItem.objects.get(case_list=made, case=case)
    assert (item.latest_answer, item.latest_answered_on) == ("returned", dt.date(2024, 6, 1))
    assert list(item.answers.values_list("answer", flat=True)) == ["received", "located", "returned"]


def test_it_leaves_a_case_already_further_where_it_is(ngo_a, qatar, supervisor, cases):
    case = cases[0]
    case_services.change_status(
        case=case,
        actor=case_services.Actor.for_user(supervisor),
        to_status=Status.REUNIFIED,
        occurred_on=dt.date(2024, 2, 1),
        expected_version=case.version,
    )
    withdrawn = cases[1]
    case_services.change_status(
        case=withdrawn,
        actor=case_services.Actor.for_user(supervisor),
        to_status=Status.WITHDRAWN,
        occurred_on=dt.date(2024, 2, 1),
        expected_version=withdrawn.version,
        note="Report found mistaken.",
    )
    made = sent_list(ngo_a, qatar, cases, by=supervisor)
    assert answer(made, case, "returned", dt.date(2024, 5, 1), user=supervisor).status_change is None
    assert answer(made, withdrawn, "located", dt.date(2024, 5, 1), user=supervisor).status_change is None
    case.refresh_from_db()
    withdrawn.refresh_from_db()
    assert (case.status, withdrawn.status) == (Status.REUNIFIED, Status.WITHDRAWN)
    assert StatusChange.objects.filter(case__in=[case, withdrawn]).count() == 2


def test_it_refuses_bad_answers_and_writes_nothing(ngo_a, qatar, supervisor, caseworker, analyst, cases):
    made = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    case = cases[0]
    bad = [
        ("maybe", dt.date(2024, 4, 1), "", "answer"),
        ("located", dt.date(2024, 2, 1), "", "answered_on"),  # before the list was sent
        ("located", dt.date.today() + dt.timedelta(days=1), "", "answered_on"),
        ("located", None, "", "answered_on"),
        ("located", dt.date(2024, 4, 1), "her passport AB123456", "note"),
    ]
    for kind, on, note, field in bad:
        with pytest.raises(ValidationError) as refused:
            services.record_answer(
                case_list=made,
                case=case,
                answer=kind,
                answered_on=on,
                note=note,
                answerer=services.Answerer(user=caseworker),
            )
        assert field in refused.value.message_dict, (kind, on, note)
    with pytest.raises(PermissionDenied):
        answer(made, case, "located", dt.date(2024, 4, 1), user=analyst)
    assert not ListAnswer.objects.exists()
    case.refresh_from_db()
    assert case.status == Status.REPORTED


def test_it_refuses_a_return_dated_before_the_cases_latest_change_and_writes_nothing(ngo_a, qatar, supervisor, cases):
    case = cases[0]
    made = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    case_services.change_status(
        case=case,
        actor=case_services.Actor.for_user(supervisor),
        to_status=Status.VERIFIED,
        occurred_on=dt.date(2024, 5, 1),
        expected_version=case.version,
    )
    with pytest.raises(ValidationError) as refused:
        answer(made, case, "located", dt.date(2024, 4, 1), user=supervisor)
    assert "answered_on" in refused.value.message_dict
    assert not ListAnswer.objects.exists()


def test_it_lets_the_intermediarys_token_answer_on_its_open_list_only(ngo_a, qatar, supervisor, cases):
    made = sent_list(ngo_a, qatar, cases, by=supervisor)
    token, _plain = make_token(qatar, "update")
    read_token, _plain = make_token(qatar, "read")
    vatican_token, _plain = make_token(Organisation.objects.get(slug="vatican"), "update")
    case = cases[0]
    located = answer(made, case, "located", dt.date(2024, 4, 1), token=token)
    assert located.recorded_by_token == token
    assert located.status_change is not None and located.status_change.recorded_by_token == token
    assert CaseList.objects.get(pk=made.pk).has_unread_answers
    with pytest.raises(PermissionDenied):
        answer(made, cases[1], "located", dt.date(2024, 4, 1), token=read_token)
    with pytest.raises(services.ListNotFound):
        answer(made, cases[1], "located", dt.date(2024, 4, 1), token=vatican_token)
    services.close_list(case_list=made, by=supervisor)
    with pytest.raises(services.ListNotFound):
        answer(made, cases[1], "located", dt.date(2024, 4, 2), token=token)
    assert ListAnswer.objects.count() == 1


def test_it_refuses_an_answer_about_a_case_not_on_the_list(ngo_a, qatar, supervisor, cases):
    made = sent_list(ngo_a, qatar, cases[:1], by=supervisor)
    with pytest.raises(services.ListNotFound):
        answer(made, cases[1], "located", dt.date(2024, 4, 1), user=supervisor)


def test_it_keeps_the_answer_trail_append_only(ngo_a, qatar, supervisor, cases):
    made = sent_list(ngo_a, qatar, cases, by=supervisor)
    answer(made, cases[0], "received", dt.date(2024, 4, 1), user=supervisor)
    with pytest.raises(PermissionError):
        ListAnswer.objects.all().update(answer="returned")
    with pytest.raises(PermissionError):
        ListAnswer.objects.all().delete()


def test_the_commands_send_a_list_and_record_an_answer(ngo_a, qatar, cases, capsys):
    call_command(
        "send_list",
        "--organisation",
        ngo_a.slug,
        "--intermediary",
        qatar.slug,
        "--sent-on",
        "2024-03-01",
        "--reference",
        *[case.reference.lower() for case in cases],
    )
    list_id = int(capsys.readouterr().out.strip().splitlines()[-1])
    made = CaseList.objects.get(pk=list_id)
    assert (made.state, made.sent_on, made.items.count()) == ("sent", dt.date(2024, 3, 1), 3)
    call_command("list_answer", str(list_id), cases[0].reference, "returned", "--on", "2024-07-01")
    assert Case.objects.get(pk=cases[0].pk).status == Status.REPATRIATED
    assert Share.objects.active().filter(partner=qatar, scope=ShareScope.ANSWER).count() == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--intermediary", "nowhere"], "intermediary"),
        (["--sent-on", "2024-13-01"], "sent-on"),
        (["--reference", "C-0000-0000"], "reference"),
    ],
)
def test_send_list_refuses_bad_input_and_writes_nothing(ngo_a, qatar, cases, arguments, message):
    options = {"--organisation": ngo_a.slug, "--intermediary": qatar.slug, "--sent-on": "2024-03-01"}
    options[arguments[0]] = arguments[1]
    argv = [part for pair in options.items() for part in pair if pair[0] != "--reference"]
    references = [arguments[1]] if arguments[0] == "--reference" else [cases[0].reference]
    with pytest.raises(CommandError, match=message):
        call_command("send_list", *argv, "--reference", *references)
    assert not CaseList.objects.exists()


def test_list_answer_refuses_an_unknown_list_case_or_date(ngo_a, qatar, supervisor, cases):
    made = sent_list(ngo_a, qatar, cases[:1], by=supervisor)
    with pytest.raises(CommandError, match="list"):
        call_command("list_answer", "999999", cases[0].reference, "located", "--on", "2024-04-01")
    with pytest.raises(CommandError, match="reference"):
        call_command("list_answer", str(made.pk), cases[1].reference, "located", "--on", "2024-04-01")
    with pytest.raises(CommandError, match="on"):
        call_command("list_answer", str(made.pk), cases[0].reference, "located", "--on", "soon")
    assert not ListAnswer.objects.exists()
