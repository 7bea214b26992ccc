"""Every page type, for every role, in English and Ukrainian, on a laptop and a phone: axe-core and the width.

axe-core comes from the npm registry (package.json, pinned; ``npm ci`` in CI)
and is injected into each page. No page may have a critical or serious
violation, and no page may be wider than its viewport (390 px on a phone),
the Django admin included. The charts of the figures page must have the same
geometry in both languages.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Invitation, Organisation, Role, User
from casework import services
from casework.models import Case, Institution, SavedFilter
from linkage.models import Candidate
from partners import services as partner_services
from partners import tokens as partner_tokens
from partners import webhooks
from partners.lists import services as list_services
from reports import releases
from reports import services as report_services
from tests.e2e.conftest import CHROMIUM
from tests.factories import CaseFactory, InstitutionFactory, OrganisationFactory, UserFactory
from tests.webhook_helpers import PUBLIC_V4, fake_dns

AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
UK_CATALOG = Path(settings.BASE_DIR) / "locale" / "uk" / "LC_MESSAGES" / "django.mo"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM} (Debian's chromium)"),
    pytest.mark.skipif(not AXE.exists(), reason="needs axe-core: run `npm ci` (.ci/run does)"),
    pytest.mark.skipif(not UK_CATALOG.exists(), reason="needs the compiled Ukrainian catalog: run `make messages`"),
]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}
# (language, viewport): both languages on a phone, English on a laptop.
SCREENS = [("en", PHONE), ("uk", PHONE), ("en", LAPTOP)]


@pytest.fixture
def register(transactional_db, monkeypatch) -> dict[str, Any]:
    """A small synthetic register with something on every page."""
    fake_dns(monkeypatch, {"partner.example.org": [PUBLIC_V4]})  # the webhook's host, a public address
    ngo_a = OrganisationFactory(slug="ngo-a", name="NGO A (synthetic)", name_uk="ГО А (синтетична)")
    ngo_b = OrganisationFactory(slug="ngo-b", name="NGO B (synthetic)")
    qatar, _created = Organisation.objects.update_or_create(
        slug="qatar",
        defaults={"name": "State of Qatar", "name_uk": "Держава Катар", "kind": Organisation.Kind.INTERMEDIARY},
    )
    people = {
        role: UserFactory(username=role, organisation=ngo_a, role=role)
        for role in (Role.CASEWORKER, Role.SUPERVISOR, Role.ANALYST, Role.ORG_ADMIN)
    }
    people["admin"] = User.objects.create_superuser(
        username="admin", password="correct-horse-battery-staple", organisation=ngo_a
    )
    institution = InstitutionFactory(
        code="crimea-01", name="Children's home No. 1 (synthetic)", kind=Institution.Kind.ORPHANAGE
    )
    actor = services.Actor.for_user(people[Role.SUPERVISOR])
    cases: list[Case] = []
    for index in range(12):
        case = CaseFactory(
            organisation=ngo_a,
            reported_on=dt.date(2023, 1, 10) + dt.timedelta(days=9 * index),
            oblast=("UA-14", "UA-65", "UA-23", "UA-43")[index % 4],
            institution=institution if index % 3 == 0 else None,
            assigned_to=people[Role.CASEWORKER],
            notes="Reported through the family hotline." if index == 0 else "",
        )
        day = case.reported_on + dt.timedelta(days=30)
        services.change_status(case=case, actor=actor, to_status="verified", occurred_on=day, expected_version=1)
        if index % 2 == 0:
            services.change_status(
                case=case,
                actor=actor,
                to_status="repatriated",
                occurred_on=day + dt.timedelta(days=60),
                expected_version=2,
                via=qatar,
            )
        cases.append(case)
    other_report = CaseFactory(organisation=ngo_b, reported_on=dt.date(2023, 2, 1))
    # Lists to Qatar: one sent with answers, one draft; a possible duplicate across NGO A and NGO B.
    sent = list_services.send_list(
        case_list=list_services.create_list(
            organisation=ngo_a, intermediary=qatar, created_by=people[Role.SUPERVISOR], cases=cases[1:6]
        ),
        sent_on=dt.date(2024, 2, 1),
        by=people[Role.SUPERVISOR],
    )
    list_services.record_answer(
        case_list=sent,
        case=cases[1],
        answer="located",
        answered_on=dt.date(2024, 3, 1),
        answerer=list_services.Answerer(user=people[Role.SUPERVISOR]),
    )
    list_services.create_list(
        organisation=ngo_a, intermediary=qatar, created_by=people[Role.SUPERVISOR], cases=cases[6:8]
    )
    low, high = sorted((cases[7], other_report), key=lambda case: case.pk)
    Candidate.objects.create(case_a=low, case_b=high, score=0.91, across_organisations=True)
    partner_services.share_cases(
        owner=ngo_a,
        partner=qatar,
        cases=cases[:3],
        scope="update",
        expires_at=None,
        shared_by=people[Role.SUPERVISOR],
    )
    partner_tokens.create_token(organisation=ngo_a, scope="read", created_by=people[Role.ORG_ADMIN], name="Sync")
    webhooks.create_endpoint(
        organisation=ngo_a, url="https://partner.example.org/hook", created_by=people[Role.ORG_ADMIN]
    )
    report_services.create_command_snapshot(as_of=dt.date(2024, 6, 30))
    # A release, and a draft after it (NGO A hosts the register: its analyst prepares releases).
    ngo_a.is_host = True
    ngo_a.save(update_fields=["is_host"])
    releases.release_figures_from_command(as_of=dt.date(2024, 6, 30))
    releases.prepare_release(user=people[Role.ANALYST], as_of=dt.date(2024, 8, 31))
    return {"cases": cases, "people": people, "institution": institution, "list": sent}


def _reset_link(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"/accounts/password-reset/{uid}/{default_token_generator.make_token(user)}/"


def _invitation_link(admin: User) -> str:
    from accounts import invitations

    invitation = invitations.invite(by=admin, username="invited", email="invited@ngo-a.example", role=Role.CASEWORKER)
    Invitation.objects.filter(pk=invitation.pk).update(digest=invitations._digest("a-known-test-secret"))
    return f"/accounts/invitation/{invitation.pk}/a-known-test-secret/"


def _pages(register: dict[str, Any]) -> dict[str, list[str]]:
    case = register["cases"][0]
    reference = case.reference
    SavedFilter.objects.get_or_create(
        user=register["people"][Role.SUPERVISOR], name="Verified, Donetsk", query="oblast=UA-14&status=verified"
    )
    imports = _imports(register["people"][Role.SUPERVISOR])
    return {
        "anonymous": [
            "/accounts/login/",
            "/no-such-page/",
            # The public figures: the latest release, one by number, one that does not exist.
            "/public/figures/",
            "/public/figures/1/",
            "/public/figures/99/",
            # A forgotten password (offered where mail is configured: the test turns it on).
            "/accounts/password-reset/",
            "/accounts/password-reset/sent/",
            _reset_link(register["people"][Role.CASEWORKER]),  # the new password's form
            "/accounts/password-reset/MQ/no-such-token/",  # a link that does not work
            "/accounts/password-reset/done/",
            _invitation_link(register["people"][Role.ORG_ADMIN]),  # an invited person's password form
            "/accounts/invitation/999999/no-such-link/",  # a link that does not work
        ],
        Role.CASEWORKER: [
            "/",
            "/cases/",
            "/cases/?status=verified&sort=-changed",
            f"/cases/{reference}/",
            f"/cases/{reference}/edit/",
            "/cases/new/",
            "/institutions/",
            f"/institutions/{register['institution'].code}/",
            "/figures/",
            "/accounts/",
            "/accounts/password/",
            "/notices/",
            "/follow-ups/",
        ],
        Role.SUPERVISOR: [
            f"/cases/{reference}/",
            f"/cases/{reference}/access/",
            "/cases/share/?status=verified",
            "/figures/",
            "/figures/releases/2/",
            "/",
            "/team/",
            "/team/rules/",
            "/follow-ups/",
            "/notices/",
            f"/cases/{reference}/summary/",
            "/lists/",
            f"/lists/{register['list'].pk}/",
            f"/lists/{register['list'].pk}/?answer=none",
            f"/lists/{register['list'].pk}/items/{register['cases'][1].reference}/",
            f"/lists/{register['list'].pk + 1}/",  # the draft
            f"/lists/{register['list'].pk}/upload/",
            # An answered sheet uploaded back: with problems, ready, being recorded, recorded.
            *(f"/lists/{register['list'].pk}/sheets/{key}/" for key in _sheet_jobs(register)),
            "/lists/waiting/?days=30",
            "/links/",
            f"/links/{Candidate.objects.get().pk}/",
            "/cases/?status=verified&oblast=UA-14",
            # The web import: the upload, the columns to match, and an import with problems, ready, running, done.
            "/imports/",
            *(f"/imports/{key}/{tail}" for key, tail in imports),
        ],
        Role.ANALYST: ["/figures/", "/figures/releases/", "/figures/releases/1/", "/figures/releases/2/", "/accounts/"],
        Role.ORG_ADMIN: ["/organisation/people/", "/organisation/tokens/", "/organisation/webhooks/"],
        "admin": [
            "/admin/",
            f"/admin/casework/case/{case.pk}/change-status/",
            "/admin/casework/case/add/",
            "/admin/accounts/user/add/",
            *_admin_pages(),
        ],
    }


def _imports(supervisor: User) -> list[tuple[str, str]]:
    """Web imports in each state a page shows (their files are not needed to show them)."""
    from casework.import_models import ImportJob

    common = {"organisation_id": supervisor.organisation_id, "created_by": supervisor, "cases_format": "xlsx"}
    headers = ["start", "case/Номер справи", "case/Стать", "case/Область", "case/Дата повідомлення", "_uuid"]
    mapping = ImportJob.objects.create(cases_name="kobo.xlsx", cases_headers=headers, **common)
    problems = [
        f"kobo.xlsx:{line}: case/Стать (sex): Select a valid choice. Use one of: F, M, X." for line in range(2, 9)
    ]
    invalid = ImportJob.objects.create(
        cases_name="kobo.xlsx",
        state=ImportJob.State.INVALID,
        problems="\n".join(problems),
        problem_count=len(problems),
        **common,
    )
    ready = ImportJob.objects.create(
        cases_name="cases.xlsx",
        state=ImportJob.State.READY,
        case_count=1200,
        event_count=3400,
        detail_count=800,
        **common,
    )
    running = ImportJob.objects.create(
        cases_name="cases.xlsx", state=ImportJob.State.RUNNING, done=1500, total=4600, **common
    )
    done = ImportJob.objects.create(
        cases_name="cases.xlsx",
        state=ImportJob.State.DONE,
        case_count=1200,
        event_count=3400,
        done=4600,
        total=4600,
        references_until=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        **common,
    )
    return [
        (str(mapping.key), "columns/"),
        (str(invalid.key), ""),
        (str(ready.key), ""),
        (str(running.key), ""),
        (str(done.key), ""),
    ]


def _sheet_jobs(register: dict[str, Any]) -> list[str]:
    """Answered sheets in each state a page shows (their answers are not needed to show them)."""
    from partners.models import AnswerSheetJob

    common = {"case_list": register["list"], "uploaded_by": register["people"][Role.SUPERVISOR]}
    problems = [f"answers.xlsx:{line}: answered_on: The date is in the future." for line in range(2, 9)]
    jobs = [
        AnswerSheetJob.objects.create(
            file_name="answers.xlsx",
            state=AnswerSheetJob.State.INVALID,
            problems="\n".join(problems),
            problem_count=len(problems),
            **common,
        ),
        AnswerSheetJob.objects.create(
            file_name="answers.csv",
            state=AnswerSheetJob.State.READY,
            answer_count=1200,
            move_count=300,
            known_count=4,
            kind_counts={"located": 300, "under_verification": 900},
            **common,
        ),
        AnswerSheetJob.objects.create(
            file_name="answers.csv", state=AnswerSheetJob.State.APPLYING, done=500, total=1200, **common
        ),
        AnswerSheetJob.objects.create(
            file_name="answers.csv", state=AnswerSheetJob.State.DONE, recorded_count=1200, moved_count=300, **common
        ),
    ]
    return [str(job.key) for job in jobs]


def _admin_pages() -> list[str]:
    """Every model of the admin: its list, and the page of its first object when it has one."""
    from django.contrib import admin
    from django.urls import reverse

    pages = []
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
    return pages


def _browser_context(browser: Any, live_server: Any, user: User | None, language: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="uk-UA" if language == "uk" else "en-GB")
    cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    if user is not None:
        client = Client()
        client.force_login(user)  # a whole sign-in, second factor included (tests/conftest.py)
        # A __Host- cookie (production settings) is refused with a Domain or without Secure: the browser
        # keeps it host-only and Secure, as the server would have set it (localhost counts as secure).
        cookies.append(
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "domain": urlsplit(live_server.url).hostname,
                "path": "/",
                "secure": settings.SESSION_COOKIE_SECURE,
            }
        )
    context.add_cookies(cookies)
    return context


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def _axe_problems(page: Any) -> list[str]:
    # Evaluated by the driver, not as a <script>: the page's strict CSP stays on and untouched.
    page.evaluate(_axe_source())
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['targets']}"
        for violation in violations
        if violation["impact"] in {"serious", "critical"}
    ]


def _too_wide(page: Any) -> str | None:
    width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return f"{width} px wide in a {viewport} px viewport" if width > viewport else None


@pytest.mark.parametrize(("language", "viewport"), SCREENS, ids=[f"{lang}-{vp['width']}" for lang, vp in SCREENS])
def test_every_page_of_every_role_passes_axe_and_fits_the_screen(
    browser, live_server, register, language, viewport, settings
):
    settings.PASSWORD_RESET_BY_EMAIL = True
    problems: list[str] = []
    for who, paths in _pages(register).items():
        user = None if who == "anonymous" else register["people"][who]
        context = _browser_context(browser, live_server, user, language, viewport)
        page = context.new_page()
        try:
            for path in paths:
                response = page.goto(f"{live_server.url}{path}")
                assert response is not None and response.status < 500, f"{who} {path}: {response and response.status}"
                assert page.locator("html").get_attribute("lang") == language, f"{who} {path}"
                for problem in _axe_problems(page):
                    problems.append(f"{who} {path}: {problem}")
                too_wide = _too_wide(page)
                if too_wide:
                    problems.append(f"{who} {path}: {too_wide}")
        finally:
            context.close()
    assert problems == [], "\n".join(problems)


def _chart_geometry(page: Any, layout: str) -> list[dict[str, Any]]:
    return page.evaluate(
        """layout => [...document.querySelectorAll(`svg.chart-${layout}`)].map(svg => ({
            viewBox: svg.getAttribute('viewBox'),
            rects: [...svg.querySelectorAll('rect')].map(r => [r.dataset.key, r.getAttribute('x'), r.getAttribute('y'),
                                                              r.getAttribute('width'), r.getAttribute('height')]),
            lines: [...svg.querySelectorAll('polyline, polygon')].map(p => p.getAttribute('points')),
            ticks: [...svg.querySelectorAll('line')].map(l => [l.getAttribute('x1'), l.getAttribute('y1'),
                                                              l.getAttribute('x2'), l.getAttribute('y2')]),
        }))""",
        layout,
    )


def test_the_charts_have_the_same_geometry_in_both_languages(browser, live_server, register):
    geometry: dict[tuple[str, str], Any] = {}
    for language in ("en", "uk"):
        for layout, viewport in (("wide", LAPTOP), ("narrow", PHONE)):
            context = _browser_context(browser, live_server, register["people"][Role.ANALYST], language, viewport)
            page = context.new_page()
            page.goto(f"{live_server.url}/figures/")
            shapes = _chart_geometry(page, layout)
            # The layout meant for the screen is the one shown; the other is hidden.
            assert page.locator(f"svg.chart-{layout}").first.is_visible()
            other = "narrow" if layout == "wide" else "wide"
            assert not page.locator(f"svg.chart-{other}").first.is_visible()
            context.close()
            assert len(shapes) == 3 and all(shape["rects"] or shape["lines"] for shape in shapes)
            # SVG reads numbers with a decimal point only: "264,0" would break the chart.
            numbers = json.dumps(shapes)
            assert not re.search(r'"-?\d+,\d+"', numbers), numbers[:400]
            geometry[language, layout] = shapes
    assert geometry["en", "wide"] == geometry["uk", "wide"]
    assert geometry["en", "narrow"] == geometry["uk", "narrow"]


@pytest.fixture
def analyst_page(browser, live_server, register) -> Iterator[Any]:
    context = _browser_context(browser, live_server, register["people"][Role.ANALYST], "uk", PHONE)
    yield context.new_page()
    context.close()


def test_the_ukrainian_figures_page_reads_in_ukrainian_on_a_phone(analyst_page, live_server):
    analyst_page.goto(f"{live_server.url}/figures/")
    text = analyst_page.locator("main").inner_text()
    assert "Показники" in text and "Держава Катар" in text
    assert "State of Qatar" not in text
    assert re.search(r"\d{2}\.\d{2}\.\d{4}", text)  # 30.06.2024
    assert _too_wide(analyst_page) is None
