"""How values read on a page, in the page's language (dates: config/formats)."""

from __future__ import annotations

import datetime as dt

from django.utils import formats, timezone


def datetime_with_seconds(value: dt.datetime) -> str:
    """An audit time to the second, in the language's date and time format (15 Jan 2025, 19:36:05)."""
    pattern = str(formats.get_format("DATETIME_FORMAT")) + ":s"
    return formats.date_format(timezone.localtime(value), pattern)
