"""Alphabetical order for option lists, in English and in Ukrainian.

Python sorts by code point, which puts Ґ, Є, І and Ї after Я; Ukrainian
readers expect them in the alphabet's order. Oblasts, statuses and other
choices the register owns are sorted with this key in the active language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.utils.translation import get_language

UKRAINIAN_ALPHABET = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
_RANK = {letter: index for index, letter in enumerate(UKRAINIAN_ALPHABET)}
# Apostrophes and hyphens do not count in the order (Слов'янськ, Івано-Франківськ).
_IGNORED = set("'ʼ’- ")


def collation_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key: Latin letters in Latin order, then Cyrillic in the Ukrainian alphabet's order."""
    key: list[tuple[int, int | str]] = []
    for char in text.casefold():
        if char in _IGNORED:
            continue
        rank = _RANK.get(char)
        key.append((1, rank) if rank is not None else (0, char))
    return tuple(key)


def alphabetical(choices: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``(value, label)`` pairs sorted by label in the active language (labels may be lazy)."""
    return sorted(choices, key=lambda choice: collation_key(str(choice[1])))


def alphabetical_choices(
    choices: Iterable[tuple[Any, Any]], *, first: tuple[Any, Any] | None = None
) -> Callable[[], list[tuple[Any, Any]]]:
    """A callable for a form field's ``choices``: sorted again for each page, in that page's language."""
    fixed = list(choices)
    # The order, by language: sorting 27 oblasts by the collation key on every page cost more than the rest of
    # the form (issue 16). The labels stay lazy: each page shows them in its own language.
    orders: dict[str, list[tuple[Any, Any]]] = {}

    def sorted_choices() -> list[tuple[Any, Any]]:
        language = get_language() or ""
        ordered = orders.get(language)
        if ordered is None:
            ordered = orders[language] = alphabetical(fixed)
        return [first, *ordered] if first is not None else list(ordered)

    return sorted_choices
