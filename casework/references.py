"""Case references: ``C-XXXX-XXXX``, random, unique, easy to read aloud.

The alphabet is Crockford's base 32 (digits and capitals without I, L, O, U)
so that a reference read over a bad phone line is not mistaken for another.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_RE = re.compile(r"^C-[0-9A-Z]{4}-[0-9A-Z]{4}$")


def new_reference() -> str:
    # One 40-bit draw, read as eight base-32 digits.
    number = secrets.randbits(40)
    body = "".join(ALPHABET[(number >> shift) & 31] for shift in range(35, -1, -5))
    return f"C-{body[:4]}-{body[4:]}"


def normalise_reference(value: str) -> str:
    """Accept a reference typed in lower case, with spaces, or with look-alike letters."""
    cleaned = value.strip().upper().replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011")) if cleaned.startswith("C-") else cleaned


def new_references(count: int, *, taken: Callable[[Iterable[str]], set[str]]) -> list[str]:
    """``count`` fresh references; ``taken`` says which of some candidates already exist."""
    result: set[str] = set()
    while len(result) < count:
        candidates = {new_reference() for _ in range(count - len(result))} - result
        result |= candidates - taken(candidates)
    return list(result)
