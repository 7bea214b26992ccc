"""Finding candidates: on edit and after an import (a job with progress), the commands' doors, bad input.

Every name is invented.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from casework import services as case_services
from casework.identifying import IdentifyingDetails, PartialDate
from casework.models import Case
from linkage import services
from linkage.models import BlockKey, Candidate, CaseEncoding, LinkDecision, MatchJob
from tests.factories import CaseFactory

ONE = IdentifyingDetails(
    given_name="Ярина", family_name="Вигадана", patronymic="Тарасівна", birth_date=PartialDate(2014, 2, 9)
)
ONE_AGAIN = IdentifyingDetails(
    given_name="Yaryna", family_name="Vyhadana", patronymic="Tarasivna", birth_date=PartialDate(2014, 9, 2)
)
TWO = IdentifyingDetails(given_name="Остап", family_name="Неіснуючий", birth_date=PartialDate(2009, 11, 30))
TWO_AGAIN = IdentifyingDetails(given_name="Остап", family_name="Neisnuiuchyi", birth_date=PartialDate(2009, 11))


def encoded(organisation, details, **fields) -> Case:
    case = CaseFactory(organisation=organisation, sex=fields.pop("sex", "F"), **fields)
    services.receive_case_details(case, details)
    return case


def test_an_edit_that_corrects_a_name_finds_the_pair_and_drops_a_pair_no_longer_alike(ngo_a, ngo_b, caseworker):
    first = encoded(ngo_a, ONE)
    other = encoded(ngo_b, ONE_AGAIN)
    stranger = encoded(ngo_b, IdentifyingDetails(given_name="Ярина", family_name="Зовсімінша"))
    services.match_cases([first.pk, other.pk, stranger.pk])
    assert list(Candidate.objects.values_list("case_a_id", "case_b_id")) == [(first.pk, other.pk)]
    # The caseworker of NGO A corrects the given name: the encodings are replaced, the pair is dropped.
    actor = case_services.Actor.for_user(caseworker)
    corrected = IdentifyingDetails(given_name="Мирослава")
    case_services.update_case(case=first, actor=actor, expected_version=first.version, values={}, details=corrected)
    services.match_cases([first.pk])
    assert not Candidate.objects.exists()
    encoding = CaseEncoding.objects.get(case=first)
    assert encoding.family_name is not None and encoding.birth_date is not None  # kept: not given again
    assert Case.objects.get(pk=first.pk).version == first.version  # details alone change no field


def test_a_decided_pair_stays_when_its_cases_no_longer_score(ngo_a, ngo_b, caseworker):
    first, other = encoded(ngo_a, ONE), encoded(ngo_b, ONE_AGAIN)
    services.match_cases([first.pk])
    candidate, _row = services.decide_by_command(case_a=first, case_b=other, decision="same")
    services.receive_case_details(first, IdentifyingDetails(given_name="Мирослава", family_name="Інакша"))
    services.match_cases([first.pk])
    assert Candidate.objects.get(pk=candidate.pk).decision == "same"


def test_an_import_with_details_finds_its_pairs_through_a_job_with_progress(
    ngo_a, ngo_b, tmp_path, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the job runs here, as without Redis
    encoded(ngo_a, ONE)
    encoded(ngo_a, TWO, sex="M")
    services.match_cases(list(CaseEncoding.objects.values_list("case_id", flat=True)))
    cases_file = tmp_path / "cases.csv"
    cases_file.write_text(
        "source_ref,sex,oblast,reported_on,given_name,family_name,patronymic,birth_date,birth_place\n"
        "B-1,F,UA-14,2023-05-06,Yaryna,Vyhadana,Tarasivna,2014-09-02,\n"
        "B-2,M,UA-14,2023-05-06,Ostap,Neisnuiuchyi,,2009-11,\n"
        "B-3,M,UA-14,2023-05-06,,,,,\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the job is queued once the import commits
        call_command("import_cases", str(cases_file), organisation="ngo-b", stdout=out)
    job = MatchJob.objects.get()
    assert (job.state, job.total, job.done, job.percent) == ("done", 2, 2, 100)
    assert job.found == 2 and job.organisation == ngo_b
    pairs = set(Candidate.objects.values_list("case_a__organisation__slug", "case_b__organisation__slug"))
    assert pairs == {("ngo-a", "ngo-b")} and Candidate.objects.count() == 2
    assert CaseEncoding.objects.filter(matched_at__isnull=True).count() == 0
    assert CaseEncoding.objects.count() == 4  # the case without details has no encoding


def test_a_job_is_idempotent_and_the_sweep_matches_what_was_left_waiting(ngo_a, ngo_b, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    first, other = encoded(ngo_a, ONE), encoded(ngo_b, ONE_AGAIN)
    from linkage import tasks

    assert tasks.sweep_waiting() == 2  # both wait; the sweep starts a job (run at once without Redis)
    assert Candidate.objects.count() == 1 and services.waiting_count() == 0
    job = MatchJob.objects.get()
    assert services.run_job(job.pk).state == "done"  # run again: nothing to do, nothing doubled
    assert Candidate.objects.count() == 1 and tasks.sweep_waiting() == 0
    assert first.pk < other.pk


def test_find_duplicates_prints_every_pair_best_first(ngo_a, ngo_b):
    one, one_again = encoded(ngo_a, ONE), encoded(ngo_b, ONE_AGAIN)
    two, two_again = encoded(ngo_a, TWO, sex="M"), encoded(ngo_a, TWO_AGAIN, sex="M")
    out = io.StringIO()
    call_command("find_duplicates", "--min-score", "0.5", "--format", "csv", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "reference_a,reference_b,score"
    rows = [line.split(",") for line in lines[1:]]
    assert {(a, b) for a, b, _score in rows} == {
        (one.reference, one_again.reference),
        (two.reference, two_again.reference),
    }
    scores = [float(score) for _a, _b, score in rows]
    assert scores == sorted(scores, reverse=True) and all(0.5 <= score <= 1 for score in scores)
    # Within one organisation: only the pairs of two of its cases.
    out = io.StringIO()
    call_command("find_duplicates", "--organisation", "ngo-a", "--min-score", "0.5", stdout=out)
    assert [line.split(",")[:2] for line in out.getvalue().splitlines()[1:]] == [[two.reference, two_again.reference]]
    assert not Candidate.objects.exists()  # a report, not a change to the queue


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--min-score", "high"], "not a number between 0 and 1"),
        (["--min-score", "1.5"], "not a number between 0 and 1"),
        (["--min-score", "nan"], "not a number between 0 and 1"),
        (["--organisation", "nobody"], "No organisation has the slug"),
    ],
)
def test_find_duplicates_refuses_bad_arguments(db, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("find_duplicates", *arguments, stdout=io.StringIO())


def test_link_cases_records_and_reverses_a_decision_from_the_command_line(ngo_a, ngo_b):
    first, other = encoded(ngo_a, ONE), encoded(ngo_b, ONE_AGAIN)
    out = io.StringIO()
    call_command("link_cases", first.reference, other.reference.lower(), "--same", stdout=out)
    assert "Same child" in out.getvalue()
    candidate = Candidate.objects.get()
    assert candidate.decision == "same" and candidate.score is not None and candidate.across_organisations
    call_command("link_cases", other.reference, first.reference, "--different", stdout=out)
    assert list(LinkDecision.objects.values_list("decision", "decided_via", "decided_by")) == [
        ("same", "command line", None),
        ("different", "command line", None),
    ]
    plain = CaseFactory(organisation=ngo_a)  # no details: linked by hand, not compared
    call_command("link_cases", first.reference, plain.reference, "--same", stdout=out)
    assert Candidate.objects.get(case_b=plain).score is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["C-0000-0000", "SELF", "--same"], "No case has the reference"),
        (["SELF", "SELF", "--same"], "cannot be linked to itself"),
        (["SELF", "OTHER", "--same", "--different"], "not allowed with argument"),
        (["SELF", "OTHER"], "one of the arguments --same --different is required"),
    ],
)
def test_link_cases_refuses_bad_input_and_records_nothing(ngo_a, arguments, message):
    first, other = CaseFactory(organisation=ngo_a), CaseFactory(organisation=ngo_a)
    arguments = [{"SELF": first.reference, "OTHER": other.reference}.get(item, item) for item in arguments]
    with pytest.raises((CommandError, SystemExit)) as refused:
        call_command("link_cases", *arguments, stdout=io.StringIO(), stderr=io.StringIO())
    if isinstance(refused.value, CommandError):
        assert message in str(refused.value)
    assert not LinkDecision.objects.exists() and not Candidate.objects.exists()


def test_blocking_keeps_the_work_near_linear(ngo_a):
    from devdata.people import People

    # Two hundred different children: records that share no blocking key are never compared, so the pairs
    # looked at are a few per record, not one per pair of records (19,900 here).
    people = People(seed=5)
    for child in people.children(200):
        report = people.report(child, organisation=0, first=True)
        encoded(ngo_a, report.details, sex=child.sex)
    ids = list(CaseEncoding.objects.values_list("case_id", flat=True))
    looked_at = sum(len(others) for others in services.neighbours(ids).values()) // 2
    assert looked_at < 2 * len(ids)
    assert BlockKey.objects.count() >= 5 * len(ids)
