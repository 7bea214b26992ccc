"""A pytest plugin, loaded before pytest-django (``-p config.pytest_settings``): bad settings give one line.

pytest-django imports the settings while pytest starts; an ``ImproperlyConfigured``
there would otherwise print a long traceback instead of the variable to fix.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    from config.startup import load_settings_or_exit

    load_settings_or_exit()
