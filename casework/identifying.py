"""Identifying details: typed, encoded by whoever listens, and dropped. Never stored by casework.

DESIGN.md sections 2 and 11: a child's given name, family name, patronymic, date and place of birth
may be typed in the case form or given in an import file, so that the register can find the same
child reported twice, but the values themselves are never stored, logged, shown or exported.
casework only reads them (``IdentifyingDetails``, ``parse_birth_date``) and hands them, inside the
transaction that writes the case, to the receivers another app registered when it started
(``linkage.apps``: it keeps keyed encodings of them). casework does not import that app: the
arrows between apps point one way. With no receiver, the values are simply dropped.

An ``IdentifyingDetails`` never prints its values (its ``repr`` says so), so that a log line, an
error report or a debugger's listing of local variables does not carry them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casework.models import Case

# The columns of an import file and the fields of the case form, in this order.
DETAIL_FIELDS: tuple[str, ...] = ("given_name", "family_name", "patronymic", "birth_date", "birth_place")
MAX_LENGTH = 100
EARLIEST_BIRTH_YEAR = 1990


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date of birth as far as it is known: a year and a month, and the day when known."""

    year: int
    month: int
    day: int | None = None

    def __repr__(self) -> str:
        return "PartialDate(<not shown>)"

    def swapped(self) -> PartialDate | None:
        """The date read with day and month exchanged, when that is another real date."""
        if self.day is None or self.day == self.month or self.day > 12:
            return None
        return PartialDate(self.year, self.day, self.month)


@dataclass(frozen=True, slots=True)
class IdentifyingDetails:
    given_name: str = ""
    family_name: str = ""
    patronymic: str = ""
    birth_date: PartialDate | None = None
    birth_place: str = ""

    def __repr__(self) -> str:
        given = [field.name for field in fields(self) if getattr(self, field.name)]
        return f"IdentifyingDetails(<not shown: {', '.join(given) or 'none given'}>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return any(getattr(self, field.name) for field in fields(self))

    def given(self) -> list[str]:
        """The names of the details given."""
        return [field.name for field in fields(self) if getattr(self, field.name)]


_ISO_DAY = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
_ISO_MONTH = re.compile(r"(\d{4})-(\d{1,2})", re.ASCII)
_DOTTED_DAY = re.compile(r"(\d{1,2})[./](\d{1,2})[./](\d{4})", re.ASCII)
_DOTTED_MONTH = re.compile(r"(\d{1,2})[./](\d{4})", re.ASCII)


class NotADate(ValueError):
    """The text is not a date of birth in an accepted form. ``reason`` says why; nothing repeats the text."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def parse_birth_date(text: str, *, today: dt.date, iso_only: bool = False) -> PartialDate:
    """``YYYY-MM-DD`` or ``YYYY-MM``; unless ``iso_only``, also ``DD.MM.YYYY`` and ``MM.YYYY`` as typed in forms.

    Raises ``NotADate`` (reason: shape, month, day, future or early), never repeating the value.
    """
    value = text.strip()
    day: int | None
    if match := _ISO_DAY.fullmatch(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _ISO_MONTH.fullmatch(value):
        year, month, day = int(match[1]), int(match[2]), None
    elif not iso_only and (match := _DOTTED_DAY.fullmatch(value)):
        day, month, year = int(match[1]), int(match[2]), int(match[3])
    elif not iso_only and (match := _DOTTED_MONTH.fullmatch(value)):
        month, year, day = int(match[1]), int(match[2]), None
    else:
        raise NotADate("shape")
    if not 1 <= month <= 12:
        raise NotADate("month")
    if day is not None:
        try:
            born = dt.date(year, month, day)
        except ValueError:
            raise NotADate("day") from None
        if born > today:
            raise NotADate("future")
    elif (year, month) > (today.year, today.month):
        raise NotADate("future")
    if year < EARLIEST_BIRTH_YEAR:
        raise NotADate("early")
    return PartialDate(year, month, day)


# --- receivers ---------------------------------------------------------------------

CaseReceiver = Callable[["Case", IdentifyingDetails], None]
ImportReceiver = Callable[[int, Iterable[tuple[int, IdentifyingDetails]]], None]

_ON_CASE: dict[str, CaseReceiver] = {}
_ON_IMPORT: dict[str, ImportReceiver] = {}


def add_receiver(*, name: str, on_case: CaseReceiver, on_import: ImportReceiver) -> None:
    """Receive the details typed for one case (created or edited), and those of an import's cases.

    Called inside the transaction that writes the case or the import: a receiver that fails rolls
    the write back, so a case is never saved without what was typed for it.
    """
    _ON_CASE[name] = on_case
    _ON_IMPORT[name] = on_import


def deliver(*, case: Case, details: IdentifyingDetails) -> None:
    if details:
        for receiver in _ON_CASE.values():
            receiver(case, details)


def deliver_import(*, organisation_id: int, details: Iterable[tuple[int, IdentifyingDetails]]) -> None:
    """``details``: (case id, details) for each imported case that has some; an iterator is consumed once,
    so with more than one receiver it is read into a list first (the import has a single one, linkage)."""
    given: Iterable[tuple[int, IdentifyingDetails]] = ((case_id, found) for case_id, found in details if found)
    receivers = list(_ON_IMPORT.values())
    if len(receivers) > 1:
        given = list(given)
    for receiver in receivers:
        receiver(organisation_id, given)
