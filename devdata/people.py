"""Synthetic children with names, reported by several organisations, and the truth of who is who.

For the demo (``seed_demo`` plants the same children in NGO A and NGO B) and the linkage benchmark
(``bench/bench_linkage.py``). Every child is invented: given names, patronymics, family names and
places are drawn independently from lists of common ones (family names mostly built from common
roots and endings), so no child here is a real person.

A child reported by two or three organisations is written differently by each, as real records are:
the Ukrainian spelling, the Russian one that Russian documents use, Latin transliterations (the
Ukrainian national system, or a Russian-style one), typing mistakes, a missing patronymic or place,
day and month exchanged, the year of birth one off, only the month known, and, after an adoption, a
new family name. Brothers and sisters (same family name, patronymic and place; twins share the date
too) make the pairs that must not be joined.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from casework.identifying import IdentifyingDetails, PartialDate

# (Ukrainian, Russian) spellings; the Russian spelling is the one a Russian document would use.
BOYS: tuple[tuple[str, str], ...] = (
    ("Олександр", "Александр"), ("Максим", "Максим"), ("Артем", "Артём"), ("Дмитро", "Дмитрий"),
    ("Андрій", "Андрей"), ("Іван", "Иван"), ("Микола", "Николай"), ("Михайло", "Михаил"),
    ("Денис", "Денис"), ("Владислав", "Владислав"), ("Данило", "Даниил"), ("Назар", "Назар"),
    ("Матвій", "Матвей"), ("Кирило", "Кирилл"), ("Богдан", "Богдан"), ("Ярослав", "Ярослав"),
    ("Тимофій", "Тимофей"), ("Єгор", "Егор"), ("Ілля", "Илья"), ("Роман", "Роман"),
    ("Сергій", "Сергей"), ("Олексій", "Алексей"), ("Марк", "Марк"), ("Давид", "Давид"),
    ("Микита", "Никита"), ("Арсеній", "Арсений"), ("Захар", "Захар"), ("Ростислав", "Ростислав"),
    ("Святослав", "Святослав"), ("Тарас", "Тарас"), ("Остап", "Остап"), ("Платон", "Платон"),
    ("Віктор", "Виктор"), ("Павло", "Павел"), ("Степан", "Степан"), ("Юрій", "Юрий"),
    ("Вадим", "Вадим"), ("Олег", "Олег"), ("Тимур", "Тимур"), ("Всеволод", "Всеволод"),
)  # fmt: skip
GIRLS: tuple[tuple[str, str], ...] = (
    ("Анастасія", "Анастасия"), ("Марія", "Мария"), ("Софія", "София"), ("Анна", "Анна"),
    ("Вікторія", "Виктория"), ("Дарина", "Дарья"), ("Поліна", "Полина"), ("Єлизавета", "Елизавета"),
    ("Катерина", "Екатерина"), ("Олександра", "Александра"), ("Аліна", "Алина"), ("Юлія", "Юлия"),
    ("Валерія", "Валерия"), ("Вероніка", "Вероника"), ("Діана", "Диана"), ("Іванна", "Иванна"),
    ("Злата", "Злата"), ("Мілана", "Милана"), ("Ангеліна", "Ангелина"), ("Христина", "Кристина"),
    ("Ксенія", "Ксения"), ("Олена", "Елена"), ("Ірина", "Ирина"), ("Наталія", "Наталья"),
    ("Тетяна", "Татьяна"), ("Ольга", "Ольга"), ("Яна", "Яна"), ("Соломія", "Соломия"),
    ("Уляна", "Ульяна"), ("Карина", "Карина"), ("Маргарита", "Маргарита"), ("Богдана", "Богдана"),
    ("Мирослава", "Мирослава"), ("Аріна", "Арина"), ("Кіра", "Кира"), ("Єва", "Ева"),
    ("Аліса", "Алиса"), ("Емілія", "Эмилия"), ("Таїсія", "Таисия"), ("Лілія", "Лилия"),
)  # fmt: skip
# Fathers' names and their children's patronymics: (Ukrainian son's, daughter's), (Russian son's, daughter's).
FATHERS: tuple[tuple[str, str, str, str], ...] = (
    ("Олександрович", "Олександрівна", "Александрович", "Александровна"),
    ("Андрійович", "Андріївна", "Андреевич", "Андреевна"),
    ("Сергійович", "Сергіївна", "Сергеевич", "Сергеевна"),
    ("Олексійович", "Олексіївна", "Алексеевич", "Алексеевна"),
    ("Миколайович", "Миколаївна", "Николаевич", "Николаевна"),
    ("Дмитрович", "Дмитрівна", "Дмитриевич", "Дмитриевна"),
    ("Іванович", "Іванівна", "Иванович", "Ивановна"),
    ("Юрійович", "Юріївна", "Юрьевич", "Юрьевна"),
    ("Вікторович", "Вікторівна", "Викторович", "Викторовна"),
    ("Володимирович", "Володимирівна", "Владимирович", "Владимировна"),
    ("Васильович", "Василівна", "Васильевич", "Васильевна"),
    ("Петрович", "Петрівна", "Петрович", "Петровна"),
    ("Михайлович", "Михайлівна", "Михайлович", "Михайловна"),
    ("Євгенович", "Євгенівна", "Евгеньевич", "Евгеньевна"),
    ("Вадимович", "Вадимівна", "Вадимович", "Вадимовна"),
    ("Олегович", "Олегівна", "Олегович", "Олеговна"),
    ("Ігорович", "Ігорівна", "Игоревич", "Игоревна"),
    ("Анатолійович", "Анатоліївна", "Анатольевич", "Анатольевна"),
    ("Віталійович", "Віталіївна", "Витальевич", "Витальевна"),
    ("Романович", "Романівна", "Романович", "Романовна"),
    ("Богданович", "Богданівна", "Богданович", "Богдановна"),
    ("Тарасович", "Тарасівна", "Тарасович", "Тарасовна"),
    ("Степанович", "Степанівна", "Степанович", "Степановна"),
    ("Павлович", "Павлівна", "Павлович", "Павловна"),
    ("Максимович", "Максимівна", "Максимович", "Максимовна"),
    ("Денисович", "Денисівна", "Денисович", "Денисовна"),
    ("Ярославович", "Ярославівна", "Ярославович", "Ярославовна"),
    ("Костянтинович", "Костянтинівна", "Константинович", "Константиновна"),
    ("Русланович", "Русланівна", "Русланович", "Руслановна"),
    ("Григорович", "Григорівна", "Григорьевич", "Григорьевна"),
)
# Family names: common roots and endings, so that there are thousands of them, as in a real register.
FAMILY_ROOTS: tuple[str, ...] = (
    "Коваль", "Шевч", "Бонд", "Ткач", "Кравч", "Мельн", "Бойк", "Марч", "Лис", "Руд", "Савч", "Петр",
    "Мороз", "Поліщ", "Гонч", "Гриц", "Дяч", "Кушн", "Левч", "Литв", "Мартин", "Павл", "Панч", "Романч",
    "Сидор", "Тимч", "Федор", "Харч", "Яковл", "Кузьм", "Гаврил", "Демч", "Зінч", "Іванч", "Карпенч",
    "Клим", "Костюч", "Лук", "Мацк", "Назар", "Остапч", "Пилип", "Прокоп", "Семен", "Стасюч", "Тарас",
    "Усач", "Філіпч", "Хом", "Юрч", "Ярош", "Антон", "Бабич", "Білик", "Василь", "Гнатюч", "Голуб",
    "Дмитр", "Жук", "Заїч", "Ільч", "Кир", "Козл", "Корн", "Кучер", "Лавр", "Лозов", "Мирон", "Нестер",
    "Олійн", "Опанас", "Осадч", "Пономар", "Рибал", "Сав", "Сорок", "Стець", "Тесл", "Ус", "Фед",
    "Цибул", "Чорн", "Шаповал", "Шульг", "Щерб", "Юхим", "Якуб", "Вовк", "Гуц", "Довгал", "Дорош",
    "Заруб", "Калин", "Кобзар", "Лесь", "Мазур", "Малин", "Нечип", "Ничип", "Охрім", "Панас",
)  # fmt: skip
FAMILY_ENDINGS: tuple[str, ...] = ("енко", "ук", "чук", "ишин", "ець", "ак", "ик", "ович", "ський", "ко", "юк", "ан")
# Places of birth (Ukrainian spelling, Russian spelling, oblast as ISO 3166-2:UA).
PLACES: tuple[tuple[str, str, str], ...] = (
    ("Маріуполь", "Мариуполь", "UA-14"), ("Херсон", "Херсон", "UA-65"), ("Мелітополь", "Мелитополь", "UA-23"),
    ("Бердянськ", "Бердянск", "UA-23"), ("Донецьк", "Донецк", "UA-14"), ("Луганськ", "Луганск", "UA-09"),
    ("Харків", "Харьков", "UA-63"), ("Запоріжжя", "Запорожье", "UA-23"), ("Ізюм", "Изюм", "UA-63"),
    ("Сєвєродонецьк", "Северодонецк", "UA-09"), ("Лисичанськ", "Лисичанск", "UA-09"),
    ("Нова Каховка", "Новая Каховка", "UA-65"), ("Енергодар", "Энергодар", "UA-23"),
    ("Генічеськ", "Геническ", "UA-65"), ("Скадовськ", "Скадовск", "UA-65"), ("Токмак", "Токмак", "UA-23"),
    ("Волноваха", "Волноваха", "UA-14"), ("Горлівка", "Горловка", "UA-14"), ("Краматорськ", "Краматорск", "UA-14"),
    ("Словʼянськ", "Славянск", "UA-14"), ("Бахмут", "Артемовск", "UA-14"), ("Олешки", "Алешки", "UA-65"),
    ("Каховка", "Каховка", "UA-65"), ("Куп'янськ", "Купянск", "UA-63"), ("Миколаїв", "Николаев", "UA-48"),
    ("Сімферополь", "Симферополь", "UA-43"), ("Джанкой", "Джанкой", "UA-43"), ("Керч", "Керчь", "UA-43"),
    ("Новоазовськ", "Новоазовск", "UA-14"), ("Старобільськ", "Старобельск", "UA-09"),
)  # fmt: skip
# Where the villages are: the oblasts most children were deported from.
VILLAGE_OBLASTS: tuple[str, ...] = ("UA-14", "UA-09", "UA-65", "UA-23", "UA-63", "UA-43", "UA-48")
VILLAGE_ROOTS: tuple[str, ...] = (
    "Нов", "Старо", "Біло", "Зелен", "Вишн", "Калин", "Берез", "Дуб", "Лип", "Соснов", "Кам'ян", "Весел",
    "Михайл", "Петр", "Іван", "Олександр", "Андрі", "Григор", "Степан", "Микола", "Степ", "Озер", "Криниц",
)  # fmt: skip
VILLAGE_ENDINGS: tuple[str, ...] = ("івка", "е", "ове", "ка", "опіль", "ий Яр", "ий Гай", "ське")

# The Ukrainian national transliteration, and a Russian-style one (as Russian documents in Latin write).
_UK_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ie", "ж": "zh", "з": "z",
    "и": "y", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ь": "", "ю": "iu", "я": "ia", "'": "", "ʼ": "",
}  # fmt: skip
_UK_LATIN_INITIAL = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
_RU_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y",
    "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i", "ї": "yi", "є": "ye", "'": "", "ʼ": "",
}  # fmt: skip
_RU_LATIN_INITIAL = {"е": "ye"}


def transliterate(text: str, *, russian: bool) -> str:
    table, initial = (_RU_LATIN, _RU_LATIN_INITIAL) if russian else (_UK_LATIN, _UK_LATIN_INITIAL)
    words = []
    for word in text.split(" "):
        letters = []
        for position, char in enumerate(word):
            lower = char.lower()
            start = position == 0 or word[position - 1] == "-"
            mapped = (initial.get(lower) if start else None) or table.get(lower, lower)
            letters.append(mapped.capitalize() if char.isupper() else mapped)
        words.append("".join(letters))
    return " ".join(words)


def russian_family_name(name: str) -> str:
    """How a Russian document writes a Ukrainian family name: Олійник -> Олейник, Ковальська -> Ковальская."""
    for ukrainian, russian in (("ський", "ский"), ("ська", "ская"), ("ій", "ей"), ("ї", "и"), ("є", "е")):
        name = name.replace(ukrainian, russian)
    return name.replace("і", "и").replace("'", "").replace("ʼ", "")


def _feminine(family: str) -> str:
    if family.endswith("ський"):
        return family[:-2] + "а"
    return family


@dataclass(frozen=True)
class Child:
    """An invented child, as the family knows them (Ukrainian spellings)."""

    number: int
    sex: str
    given: tuple[str, str]
    family: str
    father: tuple[str, str, str, str]
    born: PartialDate
    place: tuple[str, str]
    oblast: str
    family_group: int

    def patronymic(self, *, russian: bool) -> str:
        return self.father[(2 if russian else 0) + (1 if self.sex == "F" else 0)]


@dataclass
class Report:
    """One organisation's record of a child: the details as that organisation wrote them, and the case's
    sex and oblast of origin (which an organisation may also get wrong, rarely)."""

    child: int
    organisation: int
    details: IdentifyingDetails
    sex: str
    oblast: str
    twists: list[str] = field(default_factory=list)


class People:
    """A population of invented children, with families (brothers, sisters, twins)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible by seed)
        self._families = [root + ending for root in FAMILY_ROOTS for ending in FAMILY_ENDINGS]
        # Given names and family names are not equally common: a few names are given to many children.
        self._boy_weights = [1 / (rank + 8) for rank in range(len(BOYS))]
        self._girl_weights = [1 / (rank + 8) for rank in range(len(GIRLS))]
        self._family_weights = [1 / (rank + 50) ** 0.8 for rank in range(len(self._families))]
        self._villages = [root + ending for root in VILLAGE_ROOTS for ending in VILLAGE_ENDINGS]

    def _given(self, sex: str) -> tuple[str, str]:
        if sex == "F":
            return self.rng.choices(GIRLS, self._girl_weights)[0]
        return self.rng.choices(BOYS, self._boy_weights)[0]

    def _place(self) -> tuple[str, str, str]:
        if self.rng.random() < 0.7:
            return self.rng.choice(PLACES)
        village = self.rng.choice(self._villages)
        return (f"с. {village}", f"с. {russian_family_name(village)}", self.rng.choice(VILLAGE_OBLASTS))

    def _born(self) -> PartialDate:
        year = self.rng.randrange(2005, 2022)
        month = self.rng.randrange(1, 13)
        return PartialDate(year, month, self.rng.randrange(1, 29))

    def children(self, count: int) -> list[Child]:
        children: list[Child] = []
        group = 0
        while len(children) < count:
            group += 1
            family = self.rng.choices(self._families, self._family_weights)[0]
            father = self.rng.choice(FATHERS)
            place = self._place()
            size = self.rng.choices((1, 2, 3), (0.75, 0.2, 0.05))[0]
            twins = size > 1 and self.rng.random() < 0.08
            first_born = self._born()
            for position in range(size):
                sex = self.rng.choice("FM")
                born = first_born
                if position and not twins:
                    year = min(2021, max(2005, first_born.year + self.rng.choice((-4, -3, -2, 2, 3, 4))))
                    born = PartialDate(year, self.rng.randrange(1, 13), self.rng.randrange(1, 29))
                given = self._given(sex)
                while position and any(c.given == given for c in children[-position:]):
                    given = self._given(sex)
                children.append(
                    Child(
                        number=len(children),
                        sex=sex,
                        given=given,
                        family=_feminine(family) if sex == "F" else family,
                        father=father,
                        born=born,
                        place=place[:2],
                        oblast=place[2],
                        family_group=group,
                    )
                )
        return children[:count]

    # --- how an organisation writes a child ---------------------------------------------

    def _typo(self, text: str) -> str:
        letters = list(text)
        if len(letters) < 4:
            return text
        position = self.rng.randrange(1, len(letters) - 1)
        kind = self.rng.randrange(4)
        if kind == 0:
            del letters[position]
        elif kind == 1:
            letters[position], letters[position + 1] = letters[position + 1], letters[position]
        elif kind == 2:
            letters.insert(position, letters[position])
        else:
            cyrillic = "а" <= letters[position].lower() <= "я"
            alphabet = "абвгдежзиклмнопрстуфхцчшщюяі" if cyrillic else "abcdeiklmnoprstuvyz"
            letters[position] = self.rng.choice(alphabet)
        return "".join(letters)

    def report(self, child: Child, *, organisation: int, first: bool) -> Report:
        """A child as an organisation writes it. The first report of a child is written with care (the
        family's spelling, every detail); later ones as another organisation's files have them."""
        rng = self.rng
        twists: list[str] = []
        russian = False
        latin = False
        if not first:
            style = rng.choices(("ukrainian", "russian", "latin-uk", "latin-ru"), (0.35, 0.35, 0.15, 0.15))[0]
            russian = style in {"russian", "latin-ru"}
            latin = style.startswith("latin")
            twists.append(style)
        given = child.given[1] if russian else child.given[0]
        family = russian_family_name(child.family) if russian else child.family
        patronymic = child.patronymic(russian=russian)
        place = child.place[1] if russian else child.place[0]
        born: PartialDate | None = child.born
        sex, oblast = child.sex, child.oblast
        if not first:
            if rng.random() < 0.02:
                oblast = rng.choice(VILLAGE_OBLASTS)
                twists.append("oblast differs")
            if rng.random() < 0.01:
                sex = "U"
                twists.append("sex unknown")
            if rng.random() < 0.06:
                family = (
                    _feminine(rng.choices(self._families, self._family_weights)[0])
                    if child.sex == "F"
                    else (rng.choices(self._families, self._family_weights)[0])
                )
                family = russian_family_name(family) if russian else family
                twists.append("family name changed")
            if rng.random() < 0.25:
                patronymic = ""
                twists.append("no patronymic")
            if rng.random() < 0.3:
                place = ""
                twists.append("no place")
            assert born is not None
            roll = rng.random()
            if roll < 0.06 and born.swapped() is not None:
                born = born.swapped()
                twists.append("day and month exchanged")
            elif roll < 0.12:
                born = replace(born, year=born.year + rng.choice((-1, 1)))
                twists.append("year one off")
            elif roll < 0.2:
                born = replace(born, day=None)
                twists.append("month only")
            elif roll < 0.23:
                born = None
                twists.append("no date")
            for name in ("given", "family", "patronymic"):
                if rng.random() < 0.08:
                    twists.append(f"typo in {name}")
                    if name == "given":
                        given = self._typo(given)
                    elif name == "family":
                        family = self._typo(family)
                    elif patronymic:
                        patronymic = self._typo(patronymic)
        if latin:
            given, family, patronymic, place = (
                transliterate(value, russian=russian) for value in (given, family, patronymic, place)
            )
        return Report(
            child=child.number,
            organisation=organisation,
            details=IdentifyingDetails(
                given_name=given, family_name=family, patronymic=patronymic, birth_date=born, birth_place=place
            ),
            sex=sex,
            oblast=oblast,
            twists=twists,
        )

    def reports(
        self, children: Sequence[Child], *, organisations: int, shared: float, three: float = 0.25
    ) -> Iterator[Report]:
        """Every child reported by one organisation; a share of them (``shared``) also by one or two others
        (``three``: of those, the share reported by three)."""
        for child in children:
            owners = list(range(organisations))
            self.rng.shuffle(owners)
            count = 1
            if self.rng.random() < shared:
                count = 3 if organisations >= 3 and self.rng.random() < three else 2
            for position, organisation in enumerate(owners[:count]):
                yield self.report(child, organisation=organisation, first=position == 0)
