"""Keeping personal data out of the register.

``screen_text`` refuses free text that looks like a phone number, an e-mail
address, a document number or a full date (of birth). ``linkage_digest``
turns an identifier into a keyed hash, the only form in which it is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|"
    r"січ(?:ня|ень)|лют(?:ого|ий)|берез(?:ня|ень)|квіт(?:ня|ень)|трав(?:ня|ень)|черв(?:ня|ень)|"
    r"лип(?:ня|ень)|серп(?:ня|ень)|верес(?:ня|ень)|жовт(?:ня|ень)|листопад(?:а)?|груд(?:ня|ень)|"
    r"январ[яь]|феврал[яь]|марта?|апрел[яь]|ма[яй]|июн[яь]|июл[яь]|августа?|сентябр[яь]|октябр[яь]|ноябр[яь]|декабр[яь]"
)

# Order matters: the first pattern that matches names what was found.
_PATTERNS: tuple[tuple[str, re.Pattern[str], Promise], ...] = (
    (
        "email",
        re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE),
        _("an e-mail address"),
    ),
    (
        "date",
        re.compile(
            r"(?<!\d)(?:"
            r"\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}"  # 12.03.2015, 12/03/2015
            r"|(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2}"  # 2015-03-12
            r")(?!\d)"
            r"|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:" + _MONTHS + r")\.?,?\s+(?:19|20)\d{2}\b"
            r"|\b(?:" + _MONTHS + r")\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}\b",
            re.IGNORECASE | re.UNICODE,
        ),
        _("a full date (a date of birth must never be recorded; give the year only)"),
    ),
    (
        "document",
        re.compile(
            # Passport or certificate series and number: AB123456, АБ 123456,
            # I-АБ 123456 (birth certificate), 45 12 345678 (Russian passport).
            r"(?<![\w])(?:[IVX]{1,4}-?\s?)?[A-ZА-ЯІЇЄҐ]{2}\s?№?\s?\d{6}(?!\d)"
            r"|(?<!\d)\d{2}\s\d{2}\s\d{6}(?!\d)"
            r"|№\s?\d{5,}",
            re.UNICODE,
        ),
        _("a document number"),
    ),
    (
        "register_number",
        # A long bare run of digits not shaped like a Ukrainian phone number
        # (those start with 0 or 380) is an ID card, tax or register number.
        re.compile(r"(?<![\d+])(?!0|380)\d{8,}(?!\d)"),
        _("a document or register number"),
    ),
    (
        "phone",
        # Nine or more digits, optionally with a leading + and separators.
        re.compile(r"(?<![\w])\+?\(?\d(?:[\s().-]{0,2}\d){8,}(?!\w)"),
        _("a phone number"),
    ),
)


@dataclass(frozen=True)
class ScreenFinding:
    kind: str
    label: Promise
    start: int
    end: int


def find_personal_data(text: str) -> list[ScreenFinding]:
    findings: list[ScreenFinding] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern, label in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            findings.append(ScreenFinding(kind=kind, label=label, start=start, end=end))
    return sorted(findings, key=lambda finding: finding.start)


def screen_text(text: str, *, field: str = "notes") -> None:
    """Raise a ValidationError naming what looks like personal data, and where.

    The message points at characters rather than repeating the value, so the
    value is not copied into logs or error reports.
    """
    findings = find_personal_data(text or "")
    if not findings:
        return
    messages = [
        ValidationError(
            _(
                "This text contains what looks like %(what)s (characters %(start)s–%(end)s). "
                "Case records must not hold personal data: remove it."
            ),
            code=f"personal_data_{finding.kind}",
            params={"what": finding.label, "start": finding.start + 1, "end": finding.end},
        )
        for finding in findings
    ]
    raise ValidationError({field: messages})


def normalise_identifier(value: str) -> str:
    """Fold case, accents and spacing so that trivially different spellings match."""
    # ASCII (most source_refs): NFKC leaves it as it is and casefold is lower; the same result, quicker.
    folded = value.lower() if value.isascii() else unicodedata.normalize("NFKC", value).casefold()
    return " ".join(folded.split())


def linkage_digest(value: str, *, kind: str) -> str:
    """Keyed hash (HMAC-SHA256) of an identifier; the identifier itself is never stored."""
    key = settings.LINKAGE_HMAC_KEY.encode()
    message = f"{kind}:{normalise_identifier(value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def linkage_digester(*, kind: str) -> Callable[[str], str]:
    """``linkage_digest`` of one kind, for many values (an import's): the key read once, OpenSSL's one-shot HMAC."""
    key = settings.LINKAGE_HMAC_KEY.encode()
    prefix = f"{kind}:"
    one_shot = hmac.digest

    def digest(value: str) -> str:
        return one_shot(key, (prefix + normalise_identifier(value)).encode(), "sha256").hex()

    return digest
