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
