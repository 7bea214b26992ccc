"""The API's one parser: JSON whose every string a database column can take, else a 400.

JSON can spell a NUL character ("\\u0000"), which PostgreSQL refuses in text, and an
unpaired surrogate ("\\ud800"), which no UTF-8 encoder takes: either would end a
request in a 500 wherever the string reached the database or the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NOT_ALLOWED = "JSON parse error - a string holds a NUL character or an unpaired surrogate."
TOO_DEEP = "JSON parse error - nested too deeply."


def _strings(data: Any) -> list[str]:
    """Every key and string value in parsed JSON (without recursion: the depth is the sender's)."""
    found: list[str] = []
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, Mapping):
            found.extend(str(key) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def clean_text(value: str) -> bool:
    """Whether a database column and a page can take this text: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if not all(clean_text(text) for text in _strings(data)):
            raise ParseError(NOT_ALLOWED)
        return data
