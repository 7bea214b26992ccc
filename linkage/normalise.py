"""One spelling for the many spellings of a child's name, place and date of birth.

Records of the same child come from Ukrainian families and registers (Ukrainian Cyrillic), from
Russian documents (Russian Cyrillic: Александр for Олександр, Наталья for Наталія) and from
international organisations (Latin letters, in the Ukrainian national transliteration or in others:
Oleksandr, Aleksandr, Alexander). Everything is brought to one Latin "folded" spelling:

1. Cyrillic is transliterated with the Ukrainian national system (Cabinet of Ministers resolution
   No. 55 of 2010), Russian-only letters included (ы, э, ё, ъ);
2. Latin is folded so that the usual transliterations meet: г/h/g, х/kh/h, и/ы/і/y/i, й/j/i,
   є/ye/ie/e at the start of a word, ц/ts/tz/c, x/ks, w/v; apostrophes (ʼ ' ’) and soft signs are
   dropped, hyphens separate words, letter case is ignored, and doubled letters count once
   (Nataliia, Natalia, Наталья);
3. given names, patronymics and places that differ between Ukrainian, Russian and English beyond
   spelling go through the table of ``linkage.names`` (Олександр, Александр, Alexander).

Nothing here keeps a value: these functions take a value and give its folded form, used at once
to make the encodings (``linkage.encoding``) and then dropped with the value.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from casework.identifying import PartialDate
from linkage.names import GIVEN_NAMES, PLACE_KIND_WORDS, PLACES

# The Ukrainian national transliteration (KMU 2010), with the letters only Russian has. The
# spellings at the start of a word (є -> ye, ї -> yi, й -> y, ю -> yu, я -> ya) fold to the same
# letters as inside a word once y reads as i, so one table serves both places.
_CYRILLIC = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "h",
    "ґ": "g",
    "д": "d",
    "е": "e",
    "є": "ie",
    "ж": "zh",
    "з": "z",
    "и": "y",
    "і": "i",
    "ї": "i",
    "й": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ь": "",
    "ю": "iu",
    "я": "ia",
    # Russian letters. ё reads as o, as the Ukrainian spelling writes it (Ковалёв, Ковальов).
    "ё": "o",
    "ъ": "",
    "ы": "y",
    "э": "e",
    # Belarusian ў, for completeness of the alphabet around Ukraine.
    "ў": "u",
}
# Latin letters of other alphabets, before accents are taken off (š is sh, not s).
_LATIN_SPECIAL = {"š": "sh", "č": "ch", "ž": "zh", "ł": "l", "ß": "ss", "đ": "d", "ø": "o", "æ": "ae"}
APOSTROPHES = "'’ʼ`´‘ʹ′ʻ"
HYPHENS = "-‐‑‒–—―"
_TO_LATIN = str.maketrans(
    {
        **_CYRILLIC,
        **_LATIN_SPECIAL,
        **dict.fromkeys(APOSTROPHES, ""),
        **dict.fromkeys(HYPHENS, " "),
    }
)

# Folding, applied to each word. Each rule brings spellings of one sound together; one pass of the
# first pattern, then single letters, then doubled letters, then the start of the word.
_DIGRAPHS = {
    "ph": "f",
    "th": "t",
    "tch": "ch",
    "sch": "shch",  # German-style щ
    "shh": "shch",
    "tz": "ts",
    "cz": "ch",  # Polish-style ч
    "sz": "sh",  # Polish-style ш
    "ck": "k",
    "kh": "h",  # х: kh (Ukrainian, Russian), h (English habit)
    "gh": "h",
    "ce": "tse",
    "ci": "tsi",
    "cy": "tsy",
    "ch": "ch",
    "c": "k",
}
_DIGRAPH = re.compile("shch|tch|sch|shh|ph|th|tz|cz|sz|ck|kh|gh|ce|ci|cy|ch|c")
# г: h in Ukrainian, g in Russian transliteration; и, ы, й and the y of ye/yi/yu/ya: i.
_LETTERS = str.maketrans({"g": "h", "x": "ks", "q": "k", "w": "v", "j": "i", "y": "i"})
_DOUBLED = re.compile(r"(.)\1+")
_NOT_LETTER = re.compile(r"[^a-z ]+")


def _latin(text: str) -> str:
    """Lower case, Cyrillic transliterated, accents off, apostrophes dropped; words separated by one space."""
    latin = unicodedata.normalize("NFC", text).casefold().translate(_TO_LATIN)
    decomposed = unicodedata.normalize("NFKD", latin)
    if not decomposed.isascii():
        decomposed = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_NOT_LETTER.sub(" ", decomposed).split())


def fold_word(word: str) -> str:
    word = _DIGRAPH.sub(lambda match: _DIGRAPHS.get(match[0], match[0]), word)
    word = _DOUBLED.sub(r"\1", word.translate(_LETTERS))
    # Є/Е at the start of a word: Yevhen, Evgeny; Yelyzaveta, Elizaveta.
    return "e" + word[2:] if word.startswith("ie") else word


def fold(text: str) -> str:
    """The folded spelling of a name or a place: its words, folded, separated by one space."""
    return " ".join(filter(None, (fold_word(word) for word in _latin(text).split())))


def _table(groups: tuple[tuple[str, ...], ...]) -> dict[str, str]:
    """Every spelling of a group, folded, to the group's first spelling, folded."""
    table: dict[str, str] = {}
    for group in groups:
        canonical = fold(group[0])
        for spelling in group:
            table[fold(spelling)] = canonical
    return table


GIVEN_NAME_TABLE: dict[str, str] = _table(GIVEN_NAMES)
PLACE_TABLE: dict[str, str] = _table(PLACES)
_PLACE_KIND_WORDS: frozenset[str] = frozenset(fold(word) for word in PLACE_KIND_WORDS)


def given_name(text: str) -> str:
    """A given name: each of its words folded and read through the table (Анна-Марія: two words)."""
    return " ".join(GIVEN_NAME_TABLE.get(word, word) for word in fold(text).split())


# A patronymic's endings: -ovich/-evich/-ich a son's, -ivna/-ovna/-evna/-ichna a daughter's (folded
# spellings; longest first). The part before the ending is the father's given name.
_PATRONYMIC_ENDINGS: tuple[str, ...] = ("inichna", "ichna", "ovich", "evich", "ivna", "ovna", "evna", "ich")
# What the father's name may have lost before the ending: Андрій-ович (andri), Андре-евич (andr + ei),
# Дмитр-ович (dmitr + o), Микола-йович (mikolai - i), Ілл-іч (il + ia), Никит-ич (nikit + a), Як-ович (iak + iv).
_STEM_ENDINGS: tuple[str, ...] = ("", "o", "i", "a", "ei", "ia", "ii", "iv")


def _father(stem: str) -> str | None:
    # Яковлевич: the Russian patronymic adds a letter (Яков-л-евич); try without it last.
    for base in (stem, stem[:-1]) if len(stem) > 3 else (stem,):
        for ending in _STEM_ENDINGS:
            found = GIVEN_NAME_TABLE.get(fold_word(base + ending))
            if found is not None:
                return found
    return None


def patronymic_word(word: str) -> str:
    """The father's given name, as the table spells it, when the word is a patronymic of a known name.

    The ending is dropped: it only says whether the child is a son or a daughter, which the case
    record already says, and a shared ending would make every two patronymics look alike.
    """
    for ending in _PATRONYMIC_ENDINGS:
        if word.endswith(ending) and len(word) > len(ending) + 1:
            stem = word[: -len(ending)]
            return _father(stem) or stem
    return GIVEN_NAME_TABLE.get(word, word)


def patronymic(text: str) -> str:
    """A patronymic: Олександрович, Александрович and Oleksandrovych meet, as do Андріївна and Андреевна."""
    return " ".join(patronymic_word(word) for word in fold(text).split())


# Russian feminine adjectival endings, as Ukrainian writes them: Ковальская -> Ковальська, Золотая -> Золота.
_FAMILY_ENDINGS: tuple[tuple[re.Pattern[str], str], ...] = ((re.compile("aia$"), "a"),)


def family_name_word(word: str) -> str:
    for pattern, replacement in _FAMILY_ENDINGS:
        word = pattern.sub(replacement, word)
    return word


def family_name(text: str) -> str:
    """A family name: Ковальська, Ковальская, Kovalska and Kovalskaya meet; Шевченко-Бойко is two words."""
    return " ".join(family_name_word(word) for word in fold(text).split())


def birth_place(text: str) -> str:
    """A place of birth, without the words for its kind (м., г., село, city of) and through the table."""
    words = [word for word in fold(text).split() if word not in _PLACE_KIND_WORDS]
    folded = " ".join(family_name_word(word) for word in words)
    return PLACE_TABLE.get(folded, folded)


# --- dates ---------------------------------------------------------------------


def date_tokens(date: PartialDate) -> list[tuple[str, int]]:
    """What a date of birth is made of, each with its weight (how many bits it sets in the filter).

    The day and month together weigh most; the year counts through the two two-year windows it falls
    in, so that a year one off (a common slip) still shares one: 2012-03-15 and 2013-03-15 keep three
    quarters of their bits, a date known to the month only keeps two thirds with the full date.
    """
    year, month, day = date.year, date.month, date.day
    tokens = [(f"y{year}", 1), (f"w{year - 1}", 1), (f"w{year}", 1), (f"m{month}", 1)]
    if day is not None:
        tokens += [(f"d{day}", 1), (f"md{month}-{day}", 3)]
    return tokens


@lru_cache(maxsize=4096)
def skeleton(word: str, length: int = 4) -> str:
    """A word's first letter and its next consonants, for blocking: vowel slips leave it unchanged."""
    if not word:
        return ""
    rest = "".join(char for char in word[1:] if char not in "aeiou")
    return (word[0] + re.sub(r"(.)\1+", r"\1", rest))[:length]
