"""Every page: a strict Content-Security-Policy, no inline script or style, every visible string translatable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import CaseFactory, InstitutionFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"
OWN_TEMPLATES = sorted(
    [TEMPLATES / "base.html", *(TEMPLATES / "casework").glob("*.html"), *(TEMPLATES / "registration").glob("*.html")]
)


@pytest.fixture
def pages(ngo_a, caseworker):
    case = CaseFactory(organisation=ngo_a, reference="C-AAAA-AAAA")
    InstitutionFactory(code="crimea-01")
    return [
        "/",
        "/cases/",
        "/cases/?status=lost",
        "/cases/new/",
        f"/cases/{case.reference}/",
        f"/cases/{case.reference}/edit/",
        "/cases/C-0000-0000/",
        "/institutions/",
        "/institutions/crimea-01/",
    ]


def test_every_page_sends_a_strict_content_security_policy(client, caseworker, pages):
    client.force_login(caseworker)
    for url in [*pages, "/accounts/login/"]:
        response = client.get(url)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy, url
        assert "style-src 'self'" in policy, url
        assert "unsafe-inline" not in policy, url
        assert "<style" not in response.text, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), url
        assert not re.search(r"\sstyle=", response.text), url
        assert not re.search(r"\son[a-z]+=", response.text), url


def test_the_sign_in_page_sends_the_policy_too(client, db):
    assert "script-src 'self'" in client.get("/accounts/login/").headers["Content-Security-Policy"]


@pytest.mark.parametrize("template", OWN_TEMPLATES, ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_style_or_handlers(template):
    text = template.read_text(encoding="utf-8")
    assert "<style" not in text
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)
    assert not re.search(r"\sstyle=", text)
    assert not re.search(r"\son[a-z]+=", text)


# Text a template may show without translation: symbols, the reference format, language names of the switch.
UNTRANSLATED_OK = {"C-7K3M-Q9XR"}


@pytest.mark.parametrize("template", OWN_TEMPLATES, ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_every_visible_string_goes_through_translation(template):
    text = template.read_text(encoding="utf-8")
    text = re.sub(r"{%\s*blocktranslate.*?{%\s*endblocktranslate\s*%}", "", text, flags=re.S)
    text = re.sub(r"{%.*?%}|{{.*?}}|{#.*?#}", "", text, flags=re.S)
    # Attributes people read (labels for assistive technology, placeholders, titles).
    for attribute, value in re.findall(r'\s(aria-label|placeholder|title|alt)="([^"]*)"', text):
        assert value in UNTRANSLATED_OK or not re.search(r"[A-Za-zА-Яа-яІіЇїЄєҐґ]", value), (attribute, value)
    text = re.sub(r"<!DOCTYPE[^>]*>|<[^>]+>", " ", text)
    words = [word for word in text.split() if re.search(r"[A-Za-zА-Яа-яІіЇїЄєҐґ]", word)]
    assert words == [], f"untranslated text in {template.name}: {words}"
