"""A job queue (Redis) that does not answer, or refuses a message, never turns into an error page or a job
waiting for a task that will not come: the web import and an answered sheet say so and change nothing, or
put the job back where it can be started again (config.broker).

Every file here is synthetic; the source_refs are invented.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kombu.exceptions import OperationalError

from casework import tasks as case_tasks
from casework import web_import
from casework.import_models import ImportJob
from casework.models import Case
from config import broker
from partners import tasks as partner_tasks
from partners.lists import sheet_jobs
from partners.models import AnswerSheetJob
from tests.factories import CaseFactory
from tests.list_helpers import sent_list
from tests.test_web_import import kobo_xlsx, submit_suggested, the_job, upload

UNAVAILABLE = "The job queue is unavailable"


@pytest.fixture(autouse=True)
def private_dir(settings, tmp_path):
    settings.IMPORT_PRIVATE_DIR = tmp_path / "imports"
    return settings.IMPORT_PRIVATE_DIR


@pytest.fixture
def queue_down(settings):
    """Tasks go to a broker, and nothing listens where it should be."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    broker.forget()
    yield
    broker.forget()


@pytest.fixture
def refused(settings, monkeypatch):
    return refuse(settings, monkeypatch)


def refuse(settings, monkeypatch) -> mock.Mock:
    """The broker answered the ping a moment ago, then refuses the message (lost in the seconds between)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(broker, "queue_available", lambda: True)
    sent = mock.Mock(side_effect=OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
    for task in (
        case_tasks.check_import,
        case_tasks.run_import,
        partner_tasks.check_answer_sheet,
        partner_tasks.apply_answer_sheet,
    ):
        monkeypatch.setattr(task, "apply_async", sent)
    return sent


def suggested(job: ImportJob) -> dict[str, str]:
    """The columns page's form as suggested."""
    columns = web_import.suggested_mapping(job)["cases"]
    return {f"cases-{position}": columns.get(header, "") for position, header in enumerate(job.cases_headers)}


def ready_import(client, supervisor, settings, django_capture_on_commit_callbacks) -> ImportJob:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    submit_suggested(client, job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY
    return job


# --- the web import -----------------------------------------------------------------------------------------


def columns_refused(client, supervisor) -> ImportJob:
    """A file uploaded and its columns posted as suggested: refused for the queue, and said so."""
    client.force_login(supervisor)
    upload(client, ("kobo.xlsx", kobo_xlsx()))
    job = the_job()
    response = client.post(f"/imports/{job.key}/columns/", suggested(job))
    assert response.status_code == 503 and UNAVAILABLE in response.text
    assert "Correct the matching" not in response.text  # the matching was right
    job.refresh_from_db()
    return job


@pytest.mark.django_db
@pytest.mark.usefixtures("queue_down")
def test_the_columns_are_refused_at_once_when_the_queue_does_not_answer(client, supervisor):
    job = columns_refused(client, supervisor)
    assert job.state == ImportJob.State.MAPPING and job.mapping == {}


@pytest.mark.django_db(transaction=True)
def test_a_check_the_broker_refuses_puts_the_job_back_to_its_columns(client, supervisor, refused):
    job = columns_refused(client, supervisor)
    assert refused.call_count == 1
    assert job.state == ImportJob.State.MAPPING
    # Once the queue is back, the same page starts the check.
    assert client.get(f"/imports/{job.key}/columns/").status_code == 200


@pytest.mark.django_db
def test_the_import_is_refused_at_once_when_the_queue_does_not_answer(
    client, supervisor, settings, django_capture_on_commit_callbacks
):
    job = ready_import(client, supervisor, settings, django_capture_on_commit_callbacks)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    broker.forget()
    try:
        response = client.post(f"/imports/{job.key}/confirm/", follow=True)
    finally:
        broker.forget()
    assert UNAVAILABLE in response.text
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY


@pytest.mark.django_db(transaction=True)
def test_an_import_the_broker_refuses_is_ready_again_and_nothing_is_written(
    client, supervisor, settings, monkeypatch, django_capture_on_commit_callbacks
):
    job = ready_import(client, supervisor, settings, django_capture_on_commit_callbacks)
    sent = refuse(settings, monkeypatch)
    response = client.post(f"/imports/{job.key}/confirm/", follow=True)
    assert response.status_code == 200 and UNAVAILABLE in response.text
    job.refresh_from_db()
    assert job.state == ImportJob.State.READY and sent.call_count == 1
    assert not Case.objects.exists()


# --- an answered sheet ------------------------------------------------------------------------------------


@pytest.fixture
def answered(ngo_a, qatar, supervisor):
    cases = [CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10)) for _n in range(2)]
    case_list = sent_list(ngo_a, qatar, cases, by=supervisor, sent_on=dt.date(2024, 3, 1))
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow(["reference", "answer", "answered_on", "note"])
    writer.writerows([(case.reference, "located", "2024-05-01", "") for case in cases])
    return case_list, output.getvalue().encode()


def post_sheet(client, case_list, content):
    return client.post(f"/lists/{case_list.pk}/upload/", {"sheet": SimpleUploadedFile("answers.csv", content)})


@pytest.mark.django_db
@pytest.mark.usefixtures("queue_down")
def test_a_sheet_is_refused_at_once_when_the_queue_does_not_answer(client, supervisor, answered):
    case_list, content = answered
    client.force_login(supervisor)
    response = post_sheet(client, case_list, content)
    assert response.status_code == 503 and UNAVAILABLE in response.text
    assert "Correct every problem" not in response.text  # nothing is wrong with the file
    assert not AnswerSheetJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_sheet_the_broker_refuses_is_invalid_and_says_to_upload_it_again(client, supervisor, answered, refused):
    case_list, content = answered
    client.force_login(supervisor)
    response = post_sheet(client, case_list, content)
    assert response.status_code == 503 and UNAVAILABLE in response.text
    job = AnswerSheetJob.objects.get()
    assert job.state == AnswerSheetJob.State.INVALID and job.answers == [] and job.problem_count == 1
    assert "answers.csv: The job queue was unavailable" in job.problems


@pytest.mark.django_db(transaction=True)
def test_a_confirmation_the_broker_refuses_leaves_the_sheet_ready(client, supervisor, answered, settings, monkeypatch):
    case_list, content = answered
    client.force_login(supervisor)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert post_sheet(client, case_list, content).status_code == 302
    job = AnswerSheetJob.objects.get()
    assert job.state == AnswerSheetJob.State.READY

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(broker, "queue_available", lambda: True)
    sent = mock.Mock(side_effect=OperationalError("Connection refused."))
    monkeypatch.setattr(partner_tasks.apply_answer_sheet, "apply_async", sent)
    response = client.post(f"/lists/{case_list.pk}/sheets/{job.key}/confirm/", follow=True)
    assert response.status_code == 200 and UNAVAILABLE in response.text and sent.call_count == 1
    job.refresh_from_db()
    assert job.state == AnswerSheetJob.State.READY and job.confirmed_by is None and len(job.answers) == 2

    monkeypatch.setattr(broker, "queue_available", lambda: False)
    response = client.post(f"/lists/{case_list.pk}/sheets/{job.key}/confirm/", follow=True)
    assert UNAVAILABLE in response.text and sent.call_count == 1
    job.refresh_from_db()
    assert job.state == AnswerSheetJob.State.READY


@pytest.mark.django_db
def test_a_message_refused_after_the_commit_still_puts_the_job_back(
    supervisor, answered, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """Inside a caller's transaction the message goes after its commit: the job is put back then."""
    case_list, content = answered
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(broker, "queue_available", lambda: True)
    sent = mock.Mock(side_effect=OperationalError("Connection refused."))
    monkeypatch.setattr(partner_tasks.check_answer_sheet, "apply_async", sent)
    with django_capture_on_commit_callbacks(execute=True):
        job = sheet_jobs.start(case_list=case_list, user=supervisor, name="answers.csv", data=content)
        assert AnswerSheetJob.objects.get(pk=job.pk).state == AnswerSheetJob.State.CHECKING
    assert sent.call_count == 1
    assert AnswerSheetJob.objects.get(pk=job.pk).state == AnswerSheetJob.State.INVALID


@pytest.mark.django_db
def test_in_process_a_task_s_own_error_is_not_taken_for_an_outage(
    supervisor, answered, settings, monkeypatch, django_capture_on_commit_callbacks
):
    case_list, content = answered
    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(partner_tasks.check_answer_sheet, "apply_async", mock.Mock(side_effect=ZeroDivisionError))
    with pytest.raises(ZeroDivisionError), django_capture_on_commit_callbacks(execute=True):
        sheet_jobs.start(case_list=case_list, user=supervisor, name="answers.csv", data=content)
    assert AnswerSheetJob.objects.get().state == AnswerSheetJob.State.CHECKING  # not taken for an outage
