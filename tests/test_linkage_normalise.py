"""The normalisation table: the spellings of one child's details meet, different names stay apart.

Pure functions (linkage.normalise, linkage.encoding, linkage.similarity): no database. Every name here
is a common given name, a made-up family name or a real town; none describes a person.
"""

from __future__ import annotations

import datetime as dt

import pytest

from casework.identifying import IdentifyingDetails, NotADate, PartialDate, parse_birth_date
from linkage import normalise
from linkage.encoding import BYTES, Encoder, letter_pairs
from linkage.names import GIVEN_NAMES, PLACES
from linkage.similarity import Filters, field_scores, score

# Each row: spellings that must give one normalised form.
GIVEN_NAME_TABLE = [
    ("Олександр", "Александр", "Oleksandr", "Aleksandr", "Alexander", "ОЛЕКСАНДР", "oleksandr", "Alexandr"),
    ("Наталія", "Наталья", "Наталия", "Nataliia", "Natalia", "Natalya", "Nataliya"),
    ("Вʼячеслав", "В'ячеслав", "В’ячеслав", "Вячеслав", "Viacheslav", "Vyacheslav"),
    ("Олексій", "Алексей", "Oleksii", "Aleksei", "Alexey", "Oleksiy"),
    ("Юлія", "Юлия", "Yuliia", "Julia", "Yulia", "Iuliia"),
    ("Єлизавета", "Елизавета", "Yelyzaveta", "Elizaveta"),
    ("Євген", "Евгений", "Yevhen", "Evgeny", "Yevgeny"),
    ("Ганна", "Анна", "Hanna", "Anna"),
    ("Дмитро", "Дмитрий", "Dmytro", "Dmitry", "Dmitrii"),
    ("Михайло", "Михаил", "Mykhailo", "Mikhail", "Mihail"),
    ("Ілля", "Илья", "Illia", "Ilya"),
    ("Артем", "Артём", "Artem", "Artyom"),
    ("Христина", "Кристина", "Khrystyna", "Kristina", "Christina"),
    ("Анна-Марія", "Анна Марія", "Anna-Mariia", "Ганна-Мария"),
]
PATRONYMIC_TABLE = [
    ("Олександрович", "Александрович", "Oleksandrovych", "Aleksandrovich"),
    ("Олександрівна", "Александровна", "Oleksandrivna", "Aleksandrovna"),
    ("Андрійович", "Андреевич", "Andriiovych", "Andreevich"),
    ("Андріївна", "Андреевна", "Andriivna", "Andreevna"),
    ("Миколайович", "Николаевич", "Mykolaiovych", "Nikolaevich"),
    ("Дмитрович", "Дмитриевич", "Dmytrovych", "Dmitrievich"),
    ("Юріївна", "Юрьевна", "Yuriivna", "Yurevna"),
    ("Сергійович", "Сергеевич", "Serhiiovych", "Sergeevich"),
    ("Ілліч", "Ильич", "Illich", "Ilyich"),
]
FAMILY_TABLE = [
    ("Ковальська", "Ковальская", "Kovalska", "Kovalskaya", "КОВАЛЬСЬКА"),
    ("Ковальський", "Ковальский", "Kovalskyi", "Kovalsky", "Kovalskiy"),
    ("Гончаренко", "Goncharenko", "Honcharenko"),
    ("Щербак", "Shcherbak", "Scherbak"),
    ("Ковальов", "Ковалёв", "Kovalov"),
    ("Шевченко-Бойко", "Шевченко Бойко", "Shevchenko-Boiko"),
]
PLACE_TABLE = [
    ("м. Маріуполь", "г. Мариуполь", "Mariupol", "Маріуполь", "city of Mariupol"),
    ("Запоріжжя", "Запорожье", "Zaporizhzhia", "Zaporozhye"),
    ("Харків", "г. Харьков", "Kharkiv", "Kharkov"),
    ("Нова Каховка", "Новая Каховка", "Nova Kakhovka", "Novaya Kakhovka"),
    ("смт Новоазовськ", "пгт Новоазовск", "Novoazovsk"),
    ("Київ", "Киев", "Kyiv", "Kiev"),
]


@pytest.mark.parametrize("spellings", GIVEN_NAME_TABLE, ids=lambda row: row[0])
def test_it_brings_the_spellings_of_a_given_name_together(spellings):
    assert {normalise.given_name(spelling) for spelling in spellings} == {normalise.given_name(spellings[0])}


@pytest.mark.parametrize("spellings", PATRONYMIC_TABLE, ids=lambda row: row[0])
def test_it_brings_the_spellings_of_a_patronymic_together(spellings):
    assert {normalise.patronymic(spelling) for spelling in spellings} == {normalise.patronymic(spellings[0])}


@pytest.mark.parametrize("spellings", FAMILY_TABLE, ids=lambda row: row[0])
def test_it_brings_the_spellings_of_a_family_name_together(spellings):
    assert {normalise.family_name(spelling) for spelling in spellings} == {normalise.family_name(spellings[0])}


@pytest.mark.parametrize("spellings", PLACE_TABLE, ids=lambda row: row[0])
def test_it_brings_the_spellings_of_a_place_together(spellings):
    assert {normalise.birth_place(spelling) for spelling in spellings} == {normalise.birth_place(spellings[0])}


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Олександр", "Олександра"),
        ("Олександр", "Олексій"),
        ("Іван", "Іванна"),
        ("Ярослав", "Ярослава"),
        ("Марія", "Марина"),
        ("Олена", "Ольга"),
    ],
)
def test_different_names_stay_different(one, other):
    assert normalise.given_name(one) != normalise.given_name(other)


def test_a_daughter_and_a_son_of_one_father_have_the_same_patronymic_once_normalised():
    # The ending says only the child's sex, which the case record holds: the father's name is what is compared.
    assert normalise.patronymic("Олександрівна") == normalise.patronymic("Олександрович")
    assert normalise.patronymic("Олександрівна") != normalise.patronymic("Олексіївна")


def test_the_table_gives_every_spelling_one_name_only():
    for groups in (GIVEN_NAMES, PLACES):
        owner: dict[str, str] = {}
        for group in groups:
            for spelling in group:
                folded = normalise.fold(spelling)
                assert owner.setdefault(folded, group[0]) == group[0], (spelling, owner[folded], group[0])


def test_folding_keeps_only_latin_letters_and_single_spaces():
    assert normalise.fold("  Анна–Марія  (ʼ123) О'Коннор ") == "ana maria okonor"
    assert normalise.fold("Žofie Šťastná") == "zhofie shtastna"
    assert normalise.fold("") == "" and normalise.fold("?!") == ""


# --- dates -------------------------------------------------------------------------------------

TODAY = dt.date(2025, 2, 2)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2012-03-15", PartialDate(2012, 3, 15)),
        ("2012-3-5", PartialDate(2012, 3, 5)),
        ("2012-03", PartialDate(2012, 3)),
        ("15.03.2012", PartialDate(2012, 3, 15)),
        ("03.2012", PartialDate(2012, 3)),
        (" 2012-03-15 ", PartialDate(2012, 3, 15)),
    ],
)
def test_it_reads_a_date_of_birth_or_a_month(typed, expected):
    assert parse_birth_date(typed, today=TODAY) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("2012-13-01", "month"),
        ("2012-02-30", "day"),
        ("2026-01-01", "future"),
        ("2025-03", "future"),
        ("1980-01-01", "early"),
        ("15/03/12", "shape"),
        ("next spring", "shape"),
        ("20120315", "shape"),
        ("", "shape"),
    ],
)
def test_it_refuses_what_is_not_a_date_of_birth_without_repeating_it(typed, reason):
    with pytest.raises(NotADate) as refused:
        parse_birth_date(typed, today=TODAY)
    assert refused.value.reason == reason
    assert typed.strip() == "" or typed not in str(refused.value)


def test_an_import_takes_iso_dates_only():
    with pytest.raises(NotADate):
        parse_birth_date("15.03.2012", today=TODAY, iso_only=True)


def test_a_date_knows_its_day_and_month_exchanged():
    assert PartialDate(2012, 3, 7).swapped() == PartialDate(2012, 7, 3)
    assert PartialDate(2012, 3, 15).swapped() is None  # no 15th month
    assert PartialDate(2012, 3, 3).swapped() is None
    assert PartialDate(2012, 3).swapped() is None


def test_details_never_print_their_values():
    details = IdentifyingDetails(given_name="Богдана", family_name="Тестенко", birth_date=PartialDate(2012, 3, 7))
    for shown in (repr(details), str(details), f"{details}", repr(details.birth_date)):
        assert "Богдана" not in shown and "Тестенко" not in shown and "2012" not in shown
    assert details.given() == ["given_name", "family_name", "birth_date"]


# --- encodings and scores -------------------------------------------------------------------------

ENCODER = Encoder(b"test-only-linkage-key-0123456789")


def _filters(**values: object) -> Filters:
    return Filters.of(ENCODER.encode(IdentifyingDetails(**values)))  # type: ignore[arg-type]


CHILD = {
    "given_name": "Олександр",
    "family_name": "Тестенко",
    "patronymic": "Андрійович",
    "birth_date": PartialDate(2012, 3, 7),
    "birth_place": "м. Маріуполь",
}


def test_the_spellings_of_one_child_meet():
    russian = _filters(
        given_name="Александр",
        family_name="Тестенко",
        patronymic="Андреевич",
        birth_date=PartialDate(2012, 3, 7),
        birth_place="г. Мариуполь",
    )
    latin = _filters(
        given_name="Oleksandr",
        family_name="Testenko",
        patronymic="Andriiovych",
        birth_date=PartialDate(2012, 7, 3),  # day and month exchanged
        birth_place="Mariupol",
    )
    ukrainian = _filters(**CHILD)
    assert field_scores(ukrainian, russian) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert field_scores(ukrainian, latin)[3] == pytest.approx(0.9)  # the date, day and month exchanged
    assert score(ukrainian, latin) > 0.99  # type: ignore[operator]


def test_a_missing_detail_is_left_out_not_counted_against():
    without = _filters(**{**CHILD, "patronymic": "", "birth_place": ""})
    scores = field_scores(_filters(**CHILD), without)
    assert scores[2] is None and scores[4] is None
    full = score(_filters(**CHILD), _filters(**CHILD))
    assert full is not None and score(_filters(**CHILD), without) == pytest.approx(full, abs=0.01)


def test_close_dates_stay_close():
    exact = _filters(**CHILD)
    year_off = _filters(**{**CHILD, "birth_date": PartialDate(2013, 3, 7)})
    month_only = _filters(**{**CHILD, "birth_date": PartialDate(2012, 3)})
    other = _filters(**{**CHILD, "birth_date": PartialDate(2016, 9, 21)})
    date = 3
    assert field_scores(exact, year_off)[date] == pytest.approx(0.75, abs=0.08)
    assert field_scores(exact, month_only)[date] == pytest.approx(0.9)
    assert field_scores(exact, other)[date] < 0.3


def test_brothers_score_below_the_same_child():
    brother = _filters(**{**CHILD, "given_name": "Максим", "birth_date": PartialDate(2015, 11, 2)})
    typo = _filters(**{**CHILD, "given_name": "Олесандр"})
    same = _filters(**CHILD)
    assert score(same, typo) > 0.9 > 0.7 > score(same, brother)  # type: ignore[operator]


def test_too_little_in_common_gives_no_score():
    assert score(_filters(given_name="Іван"), _filters(given_name="Іван", family_name="Тестенко")) is None


def test_the_key_decides_the_bits():
    other = Encoder(b"another-test-only-linkage-key-98765")
    mine = ENCODER.encode(IdentifyingDetails(**CHILD))  # type: ignore[arg-type]
    theirs = other.encode(IdentifyingDetails(**CHILD))  # type: ignore[arg-type]
    assert mine.given_name != theirs.given_name and set(mine.blocks).isdisjoint(theirs.blocks)
    assert score(Filters.of(mine), Filters.of(theirs)) < 0.5  # type: ignore[operator]


def test_an_encoding_is_fixed_size_bits_that_hold_no_value():
    encoding = ENCODER.encode(IdentifyingDetails(**CHILD))  # type: ignore[arg-type]
    for name in ("given_name", "family_name", "patronymic", "birth_date", "birth_month", "birth_place"):
        value = getattr(encoding, name)
        assert isinstance(value, bytes) and len(value) == BYTES
        for text in ("Олександр", "oleksandr", "Тестенко", "testenko", "2012", "Маріуполь", "mariupol"):
            assert text.encode() not in value
    assert "Тестенко" not in repr(encoding)
    assert letter_pairs("ivan") == {"_i", "iv", "va", "an", "n_", "i", "v", "a", "n"}


def test_an_edit_keeps_the_details_it_does_not_give():
    first = ENCODER.encode(IdentifyingDetails(**CHILD))  # type: ignore[arg-type]
    family_only = ENCODER.encode(IdentifyingDetails(family_name="Нова-Тестенко"))
    merged = family_only.merged_over(first)
    assert merged.given_name == first.given_name and merged.birth_date == first.birth_date
    assert merged.birth_month == first.birth_month and merged.family_name == family_only.family_name
    assert set(first.blocks) <= set(merged.blocks)
