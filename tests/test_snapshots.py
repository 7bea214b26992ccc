"""Snapshots: requested, queued after commit, computed once, immutable, failed with a reason."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from casework import services as case_services
from config import broker
from reports import services
from reports.models import Snapshot
from reports.tasks import compute_snapshot_task
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued(settings):
    """The task's apply_async, running the task in-process whatever REDIS_URL says (test_celery_figures: a worker)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch.object(compute_snapshot_task, "apply_async", side_effect=_run_eagerly) as apply_async:
        yield apply_async


def _run_eagerly(args, **options):
    return compute_snapshot_task.apply(args=args)


@pytest.fixture
def register(ngo_a, ngo_b, supervisor):
    """Three cases of NGO A (one returned via Qatar) and one of NGO B."""
    actor = case_services.Actor.for_user(supervisor)
    qatar = ngo_a.__class__.objects.get(slug="qatar")
    returned = CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 1, 10))
    case_services.change_status(
        case=returned,
        actor=actor,
        to_status="repatriated",
        occurred_on=dt.date(2024, 3, 1),
        expected_version=1,
        via=qatar,
    )
    CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 2, 1))
    CaseFactory(organisation=ngo_a, reported_on=dt.date(2024, 2, 2))
    CaseFactory(organisation=ngo_b, reported_on=dt.date(2024, 2, 3))


def test_it_computes_a_requested_snapshot_after_commit(register, supervisor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))
    assert len(callbacks) == 1
    snapshot.refresh_from_db()
    assert snapshot.state == Snapshot.State.DONE
    assert snapshot.exact is not None and snapshot.by_organisation is not None
    assert snapshot.series is None  # the release series: only a release's snapshot reads them
    assert snapshot.started_at is not None and snapshot.finished_at is not None
    assert snapshot.requested_by == supervisor and snapshot.trigger == Snapshot.Trigger.REQUEST
    assert snapshot.exact["totals"] == {"reported": 4, "repatriated": 1, "outstanding": 3}
    assert snapshot.by_organisation[str(supervisor.organisation_id)]["totals"]["reported"] == 3
    assert snapshot.source_cases == 4 and snapshot.source_status_changes == 1
    assert snapshot.source_last_change_id is not None and snapshot.source_last_case_update is not None
    assert snapshot.started_at <= snapshot.finished_at and snapshot.duration_ms is not None
    assert snapshot.attempts == 1 and snapshot.error == ""


def test_it_queues_nothing_when_the_transaction_rolls_back(
    register, analyst, django_capture_on_commit_callbacks, queued
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.request_snapshot(user=analyst, as_of=dt.date(2024, 12, 31))
        raise RuntimeError("something else failed in the same transaction")
    assert callbacks == []
    assert not Snapshot.objects.exists()
    queued.assert_not_called()


@pytest.mark.parametrize("role", ["caseworker", "org_admin"])
def test_it_lets_only_supervisors_and_analysts_request(register, ngo_a, role):
    user = UserFactory(username=f"figures-{role}", organisation=ngo_a, role=role)
    with pytest.raises(services.NotPermitted):
        services.request_snapshot(user=user, as_of=dt.date(2024, 12, 31))
    assert not Snapshot.objects.exists()


def test_it_refuses_a_date_in_the_future(supervisor):
    with pytest.raises(ValidationError):
        services.request_snapshot(user=supervisor, as_of=timezone.localdate() + dt.timedelta(days=1))


def test_it_computes_a_snapshot_once_however_often_the_task_runs(
    register, supervisor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))
    snapshot.refresh_from_db()
    finished, exact = snapshot.finished_at, snapshot.exact
    CaseFactory(organisation=supervisor.organisation, reported_on=dt.date(2024, 5, 1))
    assert compute_snapshot_task.apply(args=(snapshot.pk,)).get() == "done"
    snapshot.refresh_from_db()
    assert (snapshot.finished_at, snapshot.exact, snapshot.attempts) == (finished, exact, 1)


def test_it_never_changes_a_done_snapshot(register, supervisor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))
    snapshot.refresh_from_db()
    snapshot.as_of = dt.date(2020, 1, 1)
    with pytest.raises(PermissionError):
        snapshot.save()
    with pytest.raises(PermissionError):
        snapshot.delete()
    assert services.mark_failed(snapshot.pk, error="too late") is False
    snapshot.refresh_from_db()
    assert snapshot.state == Snapshot.State.DONE and snapshot.as_of == dt.date(2024, 12, 31)


def test_it_gives_up_after_workers_were_lost_several_times(register):
    snapshot = Snapshot.objects.create(
        as_of=dt.date(2024, 12, 31), trigger="command", min_cell=5, state="running", attempts=services.MAX_ATTEMPTS
    )
    assert services.compute_snapshot(snapshot.pk) == "failed"
    snapshot.refresh_from_db()
    assert snapshot.state == "failed" and f"Gave up after {services.MAX_ATTEMPTS} attempts" in snapshot.error


def test_it_fails_at_once_with_a_reason_when_the_database_is_away_in_process(register):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="command", min_cell=5)
    failing = mock.patch("reports.services.compute_figures_by_organisation", side_effect=OperationalError("gone"))
    with failing as compute, pytest.raises(OperationalError):
        compute_snapshot_task.apply(args=(snapshot.pk,))
    assert compute.call_count == 1  # a retry would hold up the request that asked
    snapshot.refresh_from_db()
    assert snapshot.state == "failed" and "database" in snapshot.error
    assert snapshot.exact is None and snapshot.by_organisation is None


def test_a_worker_retries_with_backoff_when_the_database_is_away(register):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="command", min_cell=5)
    with (
        mock.patch("reports.services.compute_figures_by_organisation", side_effect=OperationalError("gone")),
        mock.patch.object(compute_snapshot_task, "retry", side_effect=Retry()) as retry,
        pytest.raises(Retry),
    ):
        compute_snapshot_task(snapshot.pk)  # as a worker runs it: not eager, first try
    assert 0 <= retry.call_args.kwargs["countdown"] <= 5
    snapshot.refresh_from_db()
    # Released, so that the retry claims it at once instead of waiting for the sweep.
    assert snapshot.state == "queued" and snapshot.exact is None and snapshot.attempts == 1


def test_it_says_when_the_time_limit_stopped_it(register):
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 12, 31), trigger="command", min_cell=5)
    with (
        mock.patch("reports.services.compute_figures_by_organisation", side_effect=SoftTimeLimitExceeded()),
        pytest.raises(SoftTimeLimitExceeded),
    ):
        compute_snapshot_task.apply(args=(snapshot.pk,))
    snapshot.refresh_from_db()
    assert snapshot.state == "failed" and "time limit" in snapshot.error


def test_it_fails_the_snapshot_with_a_clear_reason_when_the_broker_is_down(
    register, supervisor, django_capture_on_commit_callbacks, settings, queued
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued.side_effect = BrokerError("Error 111 connecting to 127.0.0.1:1.")
    with (
        mock.patch.object(broker, "queue_available", return_value=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        snapshot = services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))
    snapshot.refresh_from_db()
    assert snapshot.state == "failed" and "job queue is unavailable" in snapshot.error


def test_it_refuses_a_request_at_once_when_the_broker_does_not_answer(register, supervisor, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    broker.forget()
    try:
        with pytest.raises(ValidationError, match="job queue is unavailable"):
            services.request_snapshot(user=supervisor, as_of=dt.date(2024, 12, 31))
    finally:
        broker.forget()
    assert not Snapshot.objects.exists()


def test_it_schedules_one_nightly_snapshot_per_night(register, django_capture_on_commit_callbacks):
    today = dt.date(2025, 2, 3)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.schedule_nightly(today=today)
        again = services.schedule_nightly(today=today)
    assert first.pk == again.pk
    first.refresh_from_db()
    assert first.as_of == dt.date(2025, 2, 2) and first.state == "done" and first.trigger == "nightly"
    assert Snapshot.objects.count() == 1


def test_it_schedules_the_night_again_after_a_failure(register, django_capture_on_commit_callbacks):
    Snapshot.objects.create(as_of=dt.date(2025, 2, 2), trigger="nightly", min_cell=5, state="failed", error="x")
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.schedule_nightly(today=dt.date(2025, 2, 3))
    snapshot.refresh_from_db()
    assert snapshot.state == "done" and Snapshot.objects.count() == 2


def test_one_open_request_per_person_and_a_few_for_everyone(supervisor, analyst, ngo_a, settings, monkeypatch):
    """Found by probing: 30 requests in 2 s queued 30 computations. Requests wait for the open ones."""
    monkeypatch.setattr(services, "queue_snapshot", lambda snapshot_id: None)  # stays queued, as with a busy worker
    monkeypatch.setattr(services.broker, "queue_available", lambda: True)
    settings.SNAPSHOT_MAX_OPEN_REQUESTS = 2
    first = services.request_snapshot(user=supervisor, as_of=dt.date(2025, 1, 1))
    with pytest.raises(ValidationError, match="still being computed"):
        services.request_snapshot(user=supervisor, as_of=dt.date(2025, 1, 2))
    services.request_snapshot(user=analyst, as_of=dt.date(2025, 1, 2))
    third = UserFactory(username="analyst-3", organisation=ngo_a, role="analyst")
    with pytest.raises(ValidationError, match="Several computations"):
        services.request_snapshot(user=third, as_of=dt.date(2025, 1, 3))
    assert Snapshot.objects.filter(trigger="request").count() == 2
    Snapshot.objects.filter(pk=first.pk).update(state="failed")
    assert services.request_snapshot(user=supervisor, as_of=dt.date(2025, 1, 4)).pk != first.pk
