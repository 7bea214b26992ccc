"""Keyed Bloom-filter encodings (CLKs) of identifying details, and keyed blocking keys.

The principle of clkhash (Schnell, Bachteler and Reiher 2009; the clkhash schema): each detail is
normalised (``linkage.normalise``), cut into pieces (the letter pairs of its words; the parts of a
date), and each piece sets a few bits of a fixed-size bit field, at positions given by an HMAC of
the piece under a key from the server's secret (``DJANGO_LINKAGE_KEY``). Two spellings that share
most letter pairs share most bits, so the Dice coefficient of their fields measures how alike they
are, while the field itself cannot be read back into the name without the key. One field per
detail (given name, family name, patronymic, date of birth, place of birth): a detail missing in
either record is left out of the comparison instead of counting as a disagreement, and a family name
changed by adoption costs only its own share of the score. The date is also encoded with its day and
month exchanged, so that a date written the other way round still meets its twin.

Blocking keys say which records are worth comparing at all: each is a keyed hash of a few
components (the skeleton of the given name, of the family name, the year of birth or a two-year
window around it...), and two records are compared only if they share one. Several recipes, each
leaving out different components, keep a pair in reach when one or two of its details differ.

The pieces, the filters and the keys are computed while the values are in memory and nothing else
is kept: no value, no folded value, no piece of a date.

clkhash itself is not used: its release pins cryptography < 41 and mypy_extensions < 0.5, which
conflict with this project's pins (cryptography 50, mypy); anonlink needs numpy and Cython at run
time. The principle takes a hundred lines.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from casework.identifying import IdentifyingDetails, PartialDate
from linkage import normalise

# Bits per field, and bits each piece sets (per unit of weight). 512 bits with 8 per letter pair
# keep a name's field about 15 % full: chance overlaps stay rare, so Dice stays close to the
# letter pairs' own Dice.
BITS = 512
BYTES = BITS // 8
BITS_PER_PIECE = 8
TEXT_FIELDS: tuple[str, ...] = ("given_name", "family_name", "patronymic", "birth_place")
FIELDS: tuple[str, ...] = ("given_name", "family_name", "patronymic", "birth_date", "birth_place")
# Stored beside the date's own field (see Encoding).
DATE_EXTRAS: tuple[str, ...] = ("birth_date_swapped", "birth_month")
_NORMALISERS = {
    "given_name": normalise.given_name,
    "family_name": normalise.family_name,
    "patronymic": normalise.patronymic,
    "birth_place": normalise.birth_place,
}


def letter_pairs(text: str) -> set[str]:
    """The letter pairs of each word, with its start and end marked, and its letters: "ivan" -> _i iv va
    an n_ and i v a n. The letters keep a slip of the keyboard (ivna for ivan) close to its word."""
    pieces: set[str] = set()
    for word in text.split():
        padded = f"_{word}_"
        pieces.update(padded[i : i + 2] for i in range(len(padded) - 1))
        pieces.update(word)
    return pieces


@dataclass(frozen=True, slots=True)
class Encoding:
    """The encodings of one record's details (None: not given) and its blocking keys."""

    given_name: bytes | None = None
    family_name: bytes | None = None
    patronymic: bytes | None = None
    birth_date: bytes | None = None
    # The date with day and month exchanged (None when that is not another real date), and the date
    # to the month only, which compares a date known to the day with one known to the month.
    birth_date_swapped: bytes | None = None
    birth_month: bytes | None = None
    birth_place: bytes | None = None
    blocks: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"Encoding(<{len(self.blocks)} blocking keys>)"

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in FIELDS)

    def merged_over(self, earlier: Encoding) -> Encoding:
        """This encoding, keeping the fields of ``earlier`` that were not given this time (an edit that
        gives a family name only keeps the encoded given name). The blocking keys are this encoding's
        when it has every component they need, otherwise both sets."""
        values = {
            name: getattr(self, name) if getattr(self, name) is not None else getattr(earlier, name)
            for name in (*FIELDS, *DATE_EXTRAS)
        }
        if self.birth_date is None:
            values.update((name, getattr(earlier, name)) for name in DATE_EXTRAS)
        else:
            values.update((name, getattr(self, name)) for name in DATE_EXTRAS)
        return Encoding(**values, blocks=tuple(sorted(set(self.blocks) | set(earlier.blocks))))


# --- blocking ---------------------------------------------------------------------

# Each recipe names the components whose values, all present, make one blocking key. W stands for a
# year window: a year y gives two keys, for the windows (y-1, y) and (y, y+1), so that years one
# apart still share one. G: skeleton of the given name, F: of the family name, P: of the patronymic,
# D: day and month, either way round, M: month, L: skeleton of the place of birth. Chosen on the
# synthetic register of bench/bench_linkage.py: together they reach 99 % of the true pairs there
# (each recipe left out costs recall), with a few candidates per record.
RECIPES: tuple[str, ...] = ("GF", "GDW", "FDW", "FPWM", "GLWM", "GPWM")


@dataclass(frozen=True, slots=True)
class _Components:
    given: str
    family: str
    patronymic: str
    day_month: str
    month: str
    windows: tuple[str, ...]
    place: str

    def values(self, letter: str) -> tuple[str, ...]:
        if letter == "W":
            return self.windows
        value = {
            "G": self.given,
            "F": self.family,
            "P": self.patronymic,
            "D": self.day_month,
            "M": self.month,
            "L": self.place,
        }[letter]
        return (value,) if value else ()


def _first_skeleton(text: str) -> str:
    words = text.split()
    return normalise.skeleton(words[0]) if words else ""


def _components(folded: dict[str, str], date: PartialDate | None) -> _Components:
    day_month = month = ""
    windows: tuple[str, ...] = ()
    if date is not None:
        month = str(date.month)
        windows = (str(date.year - 1), str(date.year))
        if date.day is not None:
            low, high = sorted((date.day, date.month))
            day_month = f"{low}-{high}"
    return _Components(
        given=_first_skeleton(folded.get("given_name", "")),
        family=_first_skeleton(folded.get("family_name", "")),
        patronymic=_first_skeleton(folded.get("patronymic", "")),
        day_month=day_month,
        month=month,
        windows=windows,
        place=normalise.skeleton(folded.get("birth_place", "").replace(" ", ""), 5),
    )


class Encoder:
    """Encodes details under one key. ``default_encoder()`` gives the one of the settings' key."""

    def __init__(self, key: bytes, *, recipes: Sequence[str] = RECIPES) -> None:
        if len(key) < 16:
            raise ValueError("The linkage key is too short.")
        self._field_keys = {name: hmac.digest(key, f"linkage/clk/{name}".encode(), "sha256") for name in FIELDS}
        self._block_key = hmac.digest(key, b"linkage/blocks", "sha256")
        self._recipes = tuple(recipes)
        # Letter pairs only (never a name or a date's pieces): nothing can be read back from what is kept.
        self._pair_mask = lru_cache(maxsize=16384)(self._mask)

    def _mask(self, field: str, piece: str, weight: int = 1) -> int:
        """The bits one piece sets: BITS_PER_PIECE * weight positions from an HMAC of the piece."""
        digest = hmac.digest(self._field_keys[field], piece.encode(), "sha256")
        count = BITS_PER_PIECE * weight
        while len(digest) < 2 * count:  # 16 positions per SHA-256 digest; more for heavier pieces
            digest += hmac.digest(self._field_keys[field], digest, "sha256")
        bits = 0
        for i in range(count):
            bits |= 1 << (int.from_bytes(digest[2 * i : 2 * i + 2], "big") % BITS)
        return bits

    def _text_filter(self, field: str, folded: str) -> bytes | None:
        pairs = letter_pairs(folded)
        if not pairs:
            return None
        bits = 0
        for pair in pairs:
            bits |= self._pair_mask(field, pair)
        return bits.to_bytes(BYTES, "big")

    def _date_filter(self, date: PartialDate | None, memo: dict[tuple[str, int], int]) -> bytes | None:
        if date is None:
            return None
        bits = 0
        for piece in normalise.date_tokens(date):
            mask = memo.get(piece)
            if mask is None:
                mask = memo[piece] = self._mask("birth_date", *piece)
            bits |= mask
        return bits.to_bytes(BYTES, "big")

    def _blocks(self, components: _Components) -> tuple[int, ...]:
        keys: set[int] = set()
        for recipe in self._recipes:
            combos: list[tuple[str, ...]] = [()]
            for letter in recipe:
                values = components.values(letter)
                combos = [(*combo, value) for combo in combos for value in values]
            for combo in combos:
                message = f"{recipe}|{'|'.join(combo)}".encode()
                keys.add(int.from_bytes(hmac.digest(self._block_key, message, "sha256")[:8], "big", signed=True))
        return tuple(sorted(keys))

    def encode(self, details: IdentifyingDetails, *, memo: dict[tuple[str, int], int] | None = None) -> Encoding:
        """``memo``: the masks of dates' pieces, kept by a caller that encodes many records at once (an
        import) and drops it after; without it nothing of a date outlives the call."""
        memo = {} if memo is None else memo
        folded = {name: _NORMALISERS[name](getattr(details, name) or "") for name in TEXT_FIELDS}
        date = details.birth_date
        swapped = date.swapped() if date is not None else None
        return Encoding(
            given_name=self._text_filter("given_name", folded["given_name"]),
            family_name=self._text_filter("family_name", folded["family_name"]),
            patronymic=self._text_filter("patronymic", folded["patronymic"]),
            birth_date=self._date_filter(date, memo),
            birth_date_swapped=self._date_filter(swapped, memo),
            birth_month=self._date_filter(PartialDate(date.year, date.month) if date is not None else None, memo),
            birth_place=self._text_filter("birth_place", folded["birth_place"]),
            blocks=self._blocks(_components(folded, date)),
        )

    def encode_many(self, details: Iterable[IdentifyingDetails]) -> Iterator[Encoding]:
        memo: dict[tuple[str, int], int] = {}
        for one in details:
            yield self.encode(one, memo=memo)


@lru_cache(maxsize=2)
def _encoder_for(key: str) -> Encoder:
    return Encoder(key.encode())


def default_encoder() -> Encoder:
    from django.conf import settings

    return _encoder_for(settings.LINKAGE_HMAC_KEY)
