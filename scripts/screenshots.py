"""Retake the README's screenshots from a running demo (``make demo``), in English and Ukrainian, laptop and phone.

    DJANGO_DEBUG=1 .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000]

Sessions are opened directly in the demo's database (a whole sign-in, second
factor included), so no backup code of the demo is used up. Writes
docs/screenshots/<page>-<language>[-phone].png.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "")
# Playwright's sync API runs an event loop in this thread; the ORM calls here are plain and short.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from accounts.sessions import LAST_SEEN_KEY, SESSION_STARTED_KEY  # noqa: E402
from accounts.two_factor import mark_second_factor_passed  # noqa: E402
from casework.models import Case  # noqa: E402
from partners.models import User  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def session_for(username: str) -> str:
    import time

    user = User.objects.get(username=username)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session[SESSION_STARTED_KEY] = session[LAST_SEEN_KEY] = int(time.time())
    mark_second_factor_passed(session, user)
    session.create()
    return str(session.session_key)


def shoot(browser: Any, base: str, *, name: str, path: str, user: str | None, language: str, phone: bool) -> None:
    locale = "uk-UA" if language == "uk" else "en-GB"  # the browser's own widgets (date inputs) follow it
    context = browser.new_context(viewport=PHONE if phone else LAPTOP, device_scale_factor=1, locale=locale)
    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
    if user is not None:
        # Host-only, as the server sets it (a __Host- cookie of production settings is refused otherwise).
        session = {"name": settings.SESSION_COOKIE_NAME, "value": session_for(user), "path": "/"}
        cookies.append({**session, "domain": urlsplit(base).hostname, "secure": settings.SESSION_COOKIE_SECURE})
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    if name == "case-form":
        # Show the form's messages: submit it with a note that holds a phone number.
        page.locator("#id_notes").fill("Call the aunt on 067 123 4567")
        page.locator("form.case-form button[type=submit]").click()
        page.wait_for_load_state("networkidle")
    target = OUT / f"{name}-{language}{'-phone' if phone else ''}.png"
    page.screenshot(path=str(target), full_page=not phone)
    print(target.relative_to(ROOT))
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    base = parser.parse_args().base
    from playwright.sync_api import sync_playwright

    case = Case.objects.filter(organisation__slug="ngo-a", status="repatriated").order_by("-last_change_at").first()
    assert case is not None, "load the demo first: make demo"
    pages = [
        ("sign-in", "/accounts/login/", None),
        ("home", "/", "caseworker"),
        ("case-list", "/cases/?status=located&sort=-changed", "caseworker"),
        ("case-detail", f"/cases/{case.reference}/", "supervisor"),
        ("case-form", "/cases/new/", "caseworker"),
        ("figures", "/figures/", "analyst"),
        ("account", "/accounts/", "supervisor"),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        for language in ("en", "uk"):
            # The browser's own widgets (a date input's dd.mm.yyyy) follow the browser's language.
            lang = "--lang=uk-UA" if language == "uk" else "--lang=en-GB"
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[*ARGS, lang])
            for name, path, user in pages:
                shoot(browser, base, name=name, path=path, user=user, language=language, phone=False)
            for name in ("home", "case-detail", "figures"):
                path, user = next((p, u) for n, p, u in pages if n == name)
                shoot(browser, base, name=name, path=path, user=user, language=language, phone=True)
            browser.close()


if __name__ == "__main__":
    main()
