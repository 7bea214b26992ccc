"""Every periodic task the code defines is in the beat schedule, and the schedule names only tasks that exist.

A task that takes no argument has nothing to be called with but the clock: it
is periodic. A task that takes ids is queued by the code and never scheduled.
"""

from __future__ import annotations

import inspect

from django.conf import settings

from config.celery_app import app

OUR_APPS = ("accounts.", "casework.", "linkage.", "partners.", "reports.")


def _our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith(OUR_APPS)}


def _takes_arguments(task: object) -> bool:
    run = task.run  # type: ignore[attr-defined]
    parameters = [
        parameter
        for parameter in inspect.signature(run).parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return bool(parameters)


def test_every_task_without_arguments_is_scheduled():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    periodic = {name for name, task in _our_tasks().items() if not _takes_arguments(task)}
    assert periodic, "no periodic task found: the task modules were not loaded"
    assert periodic - scheduled == set(), "periodic tasks missing from CELERY_BEAT_SCHEDULE"


def test_the_schedule_names_existing_tasks_that_take_no_arguments():
    tasks = _our_tasks()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in tasks, f"{entry['task']} is scheduled but no such task exists"
        assert not _takes_arguments(tasks[entry["task"]]), f"{entry['task']} needs arguments beat cannot give"


def test_the_retention_the_figures_and_the_sweeps_are_all_scheduled():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "reports.nightly_snapshot",
        "reports.sweep_stalled_snapshots",
        "casework.tasks.apply_retention_policy",
        "partners.tasks.announce_status_changes",
        "partners.tasks.sweep_webhooks",
        "partners.tasks.sweep_answer_sheets",
        "linkage.tasks.sweep_waiting",
    } <= scheduled


def test_snapshots_whose_worker_was_lost_are_swept_every_minute():
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "reports.sweep_stalled_snapshots"]
    assert entry["schedule"] <= 60
    # A sweep that waited in the queue past the next one's time is dropped, not run late in a pile.
    assert entry["options"]["expires"] <= entry["schedule"]
