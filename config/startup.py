"""One line, not a traceback, when the environment holds a bad setting: for every entry point.

``manage.py``, the WSGI application (gunicorn), the Celery worker and beat, and
pytest all load the settings through ``load_settings_or_exit``, so a bad
``DJANGO_DEBUG`` or ``DATABASE_URL`` reads the same wherever it is met.
"""

from __future__ import annotations

import os
import sys

EXIT_CODE = 2


def configuration_error(error: BaseException) -> str:
    return f"Configuration error: {error}"


def load_settings_or_exit() -> None:
    """Import the settings now; on a bad value print one line to standard error and exit."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 (the attribute access loads the settings module)
    except ImproperlyConfigured as error:
        # The process's own standard error: pytest captures sys.stderr while it starts.
        stream = sys.__stderr__ or sys.stderr
        stream.write(configuration_error(error) + "\n")
        stream.flush()
        raise SystemExit(EXIT_CODE) from None
