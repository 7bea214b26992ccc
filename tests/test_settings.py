"""Settings come only from the environment; bad values stop the start with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "1", "DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "1", "REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"DJANGO_DEBUG": "1", "DJANGO_ALLOWED_HOSTS": " , "}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "1", "FIGURES_MIN_CELL": "one"}, "FIGURES_MIN_CELL"),
        ({"DJANGO_DEBUG": "1", "SNAPSHOT_STALL_SECONDS": "soon"}, "SNAPSHOT_STALL_SECONDS"),
        ({"DJANGO_DEBUG": "1", "SNAPSHOT_STALL_SECONDS": "2"}, "SNAPSHOT_STALL_SECONDS"),
    ],
)
def test_it_fails_loudly_on_a_bad_value(env, named):
    result = start(**env)
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Configuration error:")


def test_it_starts_with_good_values():
    result = start(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-long-enough-secret-key-for-this-test-0123456789",
        DJANGO_ALLOWED_HOSTS="register.example.org",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr


def test_it_runs_tasks_eagerly_without_redis():
    from django.conf import settings as live

    without_redis = os.environ.get("REDIS_URL", "") == ""
    assert live.CELERY_TASK_ALWAYS_EAGER is without_redis


def run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    clean.update(env)
    return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "entry_point",
    [
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_screening.py"],
        [sys.executable, "-c", "import config.wsgi"],
        [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "error"],
    ],
    ids=["manage.py", "pytest", "wsgi", "celery"],
)
def test_every_entry_point_says_a_bad_setting_in_one_line(entry_point):
    result = run(entry_point, DJANGO_DEBUG="maybe")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DJANGO_DEBUG='maybe' is not a boolean: use one of 1, 0, true, false, yes, no, on, off."
    ]


def test_a_database_url_of_another_kind_is_named_by_its_scheme_never_with_its_password():
    result = start(DJANGO_DEBUG="1", DATABASE_URL="mysql://root:s3cret-pass@db.example.org/register")
    assert result.stderr.strip() == (
        "Configuration error: DATABASE_URL has the scheme 'mysql://': "
        "use a postgres:// (or postgresql://) URL, or sqlite:///path/to/file."
    )
    assert "s3cret" not in result.stderr and "django.db.backends" not in result.stderr


def test_the_demo_database_starts_without_a_warning():
    result = start(DJANGO_DEBUG="1")
    assert result.returncode == 0
    assert "WARNING" not in result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
