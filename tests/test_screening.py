"""The free-text screen and the keyed hashes of identifiers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from casework.screening import find_personal_data, linkage_digest, screen_text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Mother reachable on +380 67 123 4567", "phone"),
        ("call 067-123-45-67 after six", "phone"),
        ("тел. 0671234567", "phone"),
        ("contact: volunteer.x@example.org", "email"),
        ("born 12.03.2015", "date"),
        ("born 2015-03-12 in Mariupol", "date"),
        ("date of birth 03/12/2015", "date"),
        ("born 12 March 2015", "date"),
        ("народжена 12 березня 2015", "date"),
        ("passport AB123456", "document"),
        ("паспорт АБ 123456", "document"),
        ("свідоцтво I-АБ 123456", "document"),
        ("Russian passport 45 12 345678", "document"),
        ("ID card 123456789", "register_number"),
        ("tax number 3012345678", "register_number"),
    ],
)
def test_it_finds_personal_data(text, kind):
    findings = find_personal_data(text)
    assert [finding.kind for finding in findings] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "Seen in 2023 at camp No 5 with 14 other children",
        "Moved in March 2023 to a boarding school",
        "Aged 14-17, at risk of mobilisation",
        "Return requested via Qatar in 2024",
        "",
    ],
)
def test_it_lets_ordinary_notes_through(text):
    assert find_personal_data(text) == []
    screen_text(text)


def test_it_says_what_was_found_and_where_without_repeating_it():
    with pytest.raises(ValidationError) as info:
        screen_text("Call +380 67 123 4567 or write to x.y@example.org", field="notes")
    messages = info.value.message_dict["notes"]
    assert len(messages) == 2
    assert "phone number (characters 6–21)" in messages[0]
    assert "e-mail address" in messages[1]
    assert "4567" not in " ".join(messages)


def test_it_hashes_identifiers_with_a_key_and_normalises_them(settings):
    digest = linkage_digest("  AB-2024-0001 ", kind="register_number")
    assert digest == linkage_digest("ab-2024-0001", kind="register_number")
    assert "2024" not in digest and len(digest) == 64
    assert digest != linkage_digest("ab-2024-0001", kind="partner_reference")
    settings.LINKAGE_HMAC_KEY = "another-key-another-key-another-key"
    assert digest != linkage_digest("ab-2024-0001", kind="register_number")


@pytest.mark.parametrize(
    "value",
    ["  AB-2024-0001 ", "ab\t2024\n0001", "MiXeD Case", "Київ-17", "ＡＢ－２０２４", "Straße 5", "ǅ-7", ""],
)
def test_an_ascii_reference_is_folded_as_any_other(value):
    # normalise_identifier takes a shorter way for ASCII; every value must come out as NFKC + casefold gives it.
    import unicodedata

    from casework.screening import normalise_identifier

    assert normalise_identifier(value) == " ".join(unicodedata.normalize("NFKC", value).casefold().split())
