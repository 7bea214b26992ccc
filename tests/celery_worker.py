"""The project's Celery worker, for the tests that need a real one (tests/test_celery_figures.py).

    python -m tests.celery_worker worker --pool=solo -Q QUEUE ...

Test-only knobs, from the environment, so that nothing of the kind lives in
the settings:

* FIGURES_TEST_DELAY_SECONDS: pause inside the snapshot's transaction, after
  the figures are computed and before they are stored, so that a test can
  kill the worker in the middle of a snapshot;
* TEST_VISIBILITY_TIMEOUT: seconds after which an unacknowledged message
  goes back on the queue (an hour in production), so that a test sees the
  task of a killed worker come back within seconds (and do nothing: the
  sweep has restarted its snapshot by then).

The tests also set SNAPSHOT_STALL_SECONDS, a real setting, to a few seconds,
so that the worker beats every second and a lost one is noticed quickly.
"""

from __future__ import annotations

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.celery_app import app  # noqa: E402
from reports import services  # noqa: E402

_visibility = os.environ.get("TEST_VISIBILITY_TIMEOUT")
if _visibility:
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "visibility_timeout": float(_visibility),
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }

_delay = float(os.environ.get("FIGURES_TEST_DELAY_SECONDS") or 0)
if _delay:

    def _pause() -> None:
        time.sleep(_delay)

    services._pause_for_tests = _pause

if __name__ == "__main__":
    app.worker_main(argv=sys.argv[1:])
