"""``manage.py seed_demo``: synthetic demo data with exactly the published figures.

The figures are recomputed here from the definitions of DESIGN.md section 4
by a plain replay of every status change, independent of any figures code.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import models, transaction
from django.db.models import F
from django.test import override_settings
from django.utils import timezone

from accounts.models import BackupCodes, Organisation, Role, User
from casework.models import Case, Institution, Notice, StatusChange, Task
from casework.references import REFERENCE_RE
from casework.screening import screen_text
from casework.services import Move, check_move
from partners.models import CaseList, ListAnswer, ListItem

AS_OF = dt.date(2025, 2, 2)
# A line of backup codes in the demo's output: a username, then codes of eight letters and digits.
CODES_LINE = r"^  (supervisor|orgadmin|admin)\s+((?:[a-z0-9]{8}(?:  |$))+)"
SUPERVISOR_CODES = r"^  supervisor\s+((?:[a-z0-9]{8}(?:  |$))+)"
PASSWORD = "synthetic-demo-password-for-tests"
SIDE = {"duplicate", "withdrawn"}
RETURNED = {"repatriated", "reunified"}


# --- independent helpers (also used by test_generate_cases) -------------------


def changes_by_case(cases: Iterable[int] | None = None) -> dict[int, list[dict[str, Any]]]:
    """Every status change, grouped by case, in recording order (id)."""
    rows = StatusChange.objects.order_by("id")
    if cases is not None:
        rows = rows.filter(case_id__in=list(cases))
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.values(
        "id",
        "case_id",
        "from_status",
        "to_status",
        "occurred_on",
        "recorded_at",
        "via__slug",
        "via_id",
        "duplicate_of_id",
        "note",
        "is_correction",
        "version",
    ):
        grouped[row["case_id"]].append(row)
    return grouped


def status_on(changes: list[dict[str, Any]], day: dt.date) -> str:
    """The ``to`` status of the last change with occurred_on <= day, ties by recording order."""
    status, key = "reported", None
    for change in changes:
        change_key = (change["occurred_on"], change["id"])
        if change["occurred_on"] <= day and (key is None or change_key > key):
            status, key = change["to_status"], change_key
    return status


def figures(day: dt.date) -> dict[str, Any]:
    """reported(D), repatriated(D) and the intermediaries credited with the returns, over all cases."""
    history = changes_by_case()
    reported = repatriated = 0
    by_via: dict[str, int] = defaultdict(int)
    for pk, reported_on in Case.objects.values_list("pk", "reported_on"):
        if reported_on > day:
            continue
        changes = history.get(pk, [])
        status = status_on(changes, day)
        if status in SIDE:
            continue
        reported += 1
        if status in RETURNED:
            repatriated += 1
            moves_in = [
                change
                for change in changes
                if change["occurred_on"] <= day
                and change["to_status"] in RETURNED
                and change["from_status"] not in RETURNED
            ]
            last = max(moves_in, key=lambda change: (change["occurred_on"], change["id"]))
            by_via[last["via__slug"] or "unattributed"] += 1
    return {"reported": reported, "repatriated": repatriated, "by_via": dict(by_via)}


def replay_errors(case_ids: Iterable[int] | None = None, *, today: dt.date) -> Iterator[str]:
    """Replay every history through services.check_move; yield a description of anything wrong."""
    cases = {
        row["pk"]: row
        for row in Case.objects.filter(**({} if case_ids is None else {"pk__in": list(case_ids)})).values(
            "pk", "reference", "organisation_id", "reported_on", "status", "version", "last_change_at"
        )
    }
    history = changes_by_case(cases)
    survivors = {
        row["pk"]: row
        for row in Case.objects.filter(
            pk__in={c["duplicate_of_id"] for changes in history.values() for c in changes if c["duplicate_of_id"]}
        ).values("pk", "organisation_id")
    }
    survivor_history = changes_by_case(survivors)
    vias = {organisation.pk: organisation for organisation in Organisation.objects.all()}
    for pk, case in cases.items():
        status, last_occurred_on, last_recorded_at = "reported", None, None
        changes = history.get(pk, [])
        for index, change in enumerate(changes):
            where = f"{case['reference']} change {index + 1}"
            if change["from_status"] != status:
                yield f"{where}: from {change['from_status']}, but the case was {status}"
            if change["version"] != index + 2:
                yield f"{where}: version {change['version']}, expected {index + 2}"
            recorded_at = change["recorded_at"]
            if timezone.is_naive(recorded_at) or timezone.localdate(recorded_at) != change["occurred_on"]:
                yield f"{where}: recorded at {recorded_at}, not on the day it occurred ({change['occurred_on']})"
            if last_recorded_at is not None and recorded_at <= last_recorded_at:
                yield f"{where}: recorded before the change before it"
            survivor_id = change["duplicate_of_id"]
            survivor_status = None
            if survivor_id is not None:
                earlier = [c for c in survivor_history.get(survivor_id, []) if c["id"] < change["id"]]
                survivor_status = earlier[-1]["to_status"] if earlier else "reported"
            move = Move(
                current=status,
                to=change["to_status"],
                occurred_on=change["occurred_on"],
                reported_on=case["reported_on"],
                last_occurred_on=last_occurred_on,
                via=vias[change["via_id"]] if change["via_id"] else None,
                note=change["note"],
                duplicate_of_given=survivor_id is not None,
                duplicate_of_is_self=survivor_id == pk,
                duplicate_of_status=survivor_status,
                duplicate_of_same_organisation=survivor_id is None
                or survivors[survivor_id]["organisation_id"] == case["organisation_id"],
            )
            try:
                is_correction = check_move(move, can_correct=True, today=today)
            except Exception as exc:
                yield f"{where}: {status} -> {change['to_status']} refused: {exc}"
                return
            if is_correction != change["is_correction"]:
                yield f"{where}: is_correction {change['is_correction']}, the rules say {is_correction}"
            status, last_occurred_on, last_recorded_at = change["to_status"], change["occurred_on"], recorded_at
        if case["status"] != status:
            yield f"{case['reference']}: status {case['status']}, its last change says {status}"
        if case["version"] != 1 + len(changes):
            yield f"{case['reference']}: version {case['version']} with {len(changes)} changes"
        if case["last_change_at"] != last_recorded_at:
            yield f"{case['reference']}: last_change_at {case['last_change_at']}, last change {last_recorded_at}"


# --- the demo, loaded once for the module --------------------------------------


@pytest.fixture(scope="module")
def logins_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "logins.json"


@pytest.fixture(scope="module")
def demo_output(django_db_setup: None, django_db_blocker: Any, logins_file: Path) -> Iterator[str]:
    """Run seed_demo once; everything it wrote is rolled back after the module's tests."""
    # The same fast hasher as the tests' autouse fixture, which a module fixture runs before.
    fast_hashing = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast_hashing, transaction.atomic():
        out = io.StringIO()
        call_command("seed_demo", password=PASSWORD, logins_file=str(logins_file), stdout=out, stderr=io.StringIO())
        yield out.getvalue()
        transaction.set_rollback(True)


@pytest.fixture
def demo(demo_output: str, db: None) -> str:
    return demo_output


def test_it_has_exactly_the_published_figures(demo: str) -> None:
    result = figures(AS_OF)
    assert (result["reported"], result["repatriated"]) == (20_000, 1_189)


def test_it_goes_on_after_the_figures_day_up_to_yesterday(demo: str) -> None:
    """A live register on the day the demo is loaded: new reports and moves after the figures' day."""
    today = timezone.localdate()
    recent = today - dt.timedelta(days=90)
    assert Case.objects.filter(reported_on__gt=AS_OF).count() >= 1_000
    assert StatusChange.objects.filter(occurred_on__gt=AS_OF, case__reported_on__lte=AS_OF).count() >= 1_000
    assert StatusChange.objects.filter(occurred_on__gt=recent).count() >= 500
    assert StatusChange.objects.filter(occurred_on__gt=AS_OF, to_status__in=RETURNED).exists()
    # Nothing from today or later: the demo was recorded before the day it is loaded.
    assert not Case.objects.filter(reported_on__gte=today).exists()
    assert not StatusChange.objects.filter(occurred_on__gte=today).exists()
    # "No change in 90 days" is a part of the open cases, not all of them.
    open_cases = Case.objects.exclude(status__in=[*SIDE, "reunified"])
    moved_recently = open_cases.filter(status_changes__occurred_on__gt=recent).distinct().count()
    assert 0.2 < moved_recently / open_cases.count() < 0.8


def test_its_later_history_leaves_the_figures_as_of_the_day_alone(demo: str) -> None:
    # The same independent replay, later: more children reported and home than on the figures' day.
    later = figures(timezone.localdate())
    assert later["reported"] > 20_000 and later["repatriated"] > 1_189


def test_it_counts_both_organisations(demo: str) -> None:
    counted = Case.objects.filter(reported_on__lte=AS_OF).exclude(status__in=SIDE)
    in_ngo_b = counted.filter(organisation__slug="ngo-b").count()
    assert 0 < in_ngo_b < counted.filter(organisation__slug="ngo-a").count()
    # Moves after the figures' day are along the main path only: the same 20,000 are counted.
    assert counted.count() == 20_000
    assert Case.objects.filter(reported_on__lte=AS_OF).count() == 20_000 + Case.objects.filter(status__in=SIDE).count()


def test_it_dates_nothing_before_the_invasion_or_after_the_report(demo: str) -> None:
    first = Case.objects.order_by("reported_on").values_list("reported_on", flat=True).first()
    assert first is not None and first >= dt.date(2022, 2, 24)
    assert not Case.objects.filter(displaced_on__gt=models.F("reported_on")).exists()


def test_it_writes_histories_the_status_machine_accepts(demo: str) -> None:
    errors = list(replay_errors(today=timezone.localdate()))
    assert errors == [], "\n".join(errors[:20])


def test_it_credits_returns_to_every_intermediary_and_to_none(demo: str) -> None:
    by_via = figures(AS_OF)["by_via"]
    assert set(by_via) == {"qatar", "vatican", "south-africa", "unattributed"}
    assert sum(by_via.values()) == 1_189
    assert min(by_via.values()) >= 20


def test_it_has_corrections_duplicates_and_withdrawals(demo: str) -> None:
    changes = StatusChange.objects.all()
    assert changes.filter(is_correction=True, from_status="repatriated", to_status="located").exclude(note="").exists()
    assert changes.filter(is_correction=True, from_status="verified", to_status="reported").exists()
    # Reopened: a duplicate and a withdrawal corrected back to the main path.
    assert changes.filter(from_status="duplicate", is_correction=True).exclude(to_status__in=SIDE).exists()
    assert changes.filter(from_status="withdrawn", is_correction=True).exclude(to_status__in=SIDE).exists()
    assert not changes.filter(is_correction=True, note="").exists()
    assert not changes.filter(to_status="withdrawn", note="").exists()

    duplicates = Case.objects.filter(status="duplicate")
    assert duplicates.count() >= 100
    assert Case.objects.filter(status="withdrawn").count() >= 50
    for change in changes.filter(to_status="duplicate").select_related("case", "duplicate_of"):
        survivor = change.duplicate_of
        assert survivor is not None
        assert survivor.organisation_id == change.case.organisation_id
        assert survivor.status != "duplicate"


def test_it_writes_varied_realistic_records(demo: str) -> None:
    cases = Case.objects.all()
    assert cases.filter(birth_year__isnull=True).exists()
    years = cases.exclude(birth_year__isnull=True).values_list("birth_year", flat=True)
    assert min(years) >= 2005 and max(years) <= 2022
    heavy = ("UA-14", "UA-65", "UA-09", "UA-23", "UA-63", "UA-43")  # Donetsk ... Crimea
    by_oblast = {oblast: cases.filter(oblast=oblast).count() for oblast in (*heavy, "UA-46")}
    assert min(by_oblast[oblast] for oblast in heavy) > 5 * by_oblast["UA-46"]  # Lviv
    assert cases.filter(institution__code__startswith="crimea-").count() >= 100
    for flag in ("risk_adoption", "risk_citizenship", "risk_military", "risk_medical"):
        assert cases.filter(**{flag: True}).exists(), flag
    assert cases.exclude(placement="").values("placement").distinct().count() >= 5
    years_reported = {day.year for day in cases.values_list("reported_on", flat=True).distinct()}
    assert years_reported >= {2022, 2023, 2024, 2025}


def test_it_keeps_personal_data_out(demo: str) -> None:
    notes = set(Case.objects.exclude(notes="").values_list("notes", flat=True))
    notes |= set(StatusChange.objects.exclude(note="").values_list("note", flat=True))
    assert notes
    for note in notes:
        screen_text(note)
    references = list(Case.objects.values_list("reference", flat=True))
    assert all(REFERENCE_RE.match(reference) for reference in references)
    assert len(set(references)) == len(references)


def test_it_says_the_data_is_synthetic(demo: str) -> None:
    assert "SYNTHETIC DEMO DATA" in demo
    for slug in ("ngo-a", "ngo-b"):
        organisation = Organisation.objects.get(slug=slug)
        assert organisation.kind == Organisation.Kind.NGO
        assert "synthetic" in organisation.name
    institutions = Institution.objects.filter(code__regex=r"^crimea-(0[1-9]|1[0-3])$")
    assert institutions.count() == 13
    assert {institution.region for institution in institutions} == {"UA-43"}
    assert all("synthetic" in institution.name for institution in institutions)
    assert institutions.values("kind").distinct().count() >= 3
    assert set(Organisation.objects.filter(kind="intermediary").values_list("slug", flat=True)) >= {
        "qatar",
        "vatican",
        "south-africa",
        "icrc",
    }


def test_it_creates_the_demo_users(demo: str) -> None:
    expected = {
        "caseworker": (Role.CASEWORKER, "ngo-a"),
        "supervisor": (Role.SUPERVISOR, "ngo-a"),
        "analyst": (Role.ANALYST, "ngo-a"),
        "orgadmin": (Role.ORG_ADMIN, "ngo-a"),
        "caseworker-b": (Role.CASEWORKER, "ngo-b"),
        "admin": (Role.ORG_ADMIN, "ngo-a"),
    }
    for username, (role, organisation) in expected.items():
        user = User.objects.get(username=username)
        assert (user.role, user.organisation.slug) == (role, organisation), username
        assert user.check_password(PASSWORD), username
        assert user.is_superuser == user.is_staff == (username == "admin"), username
        # A reserved domain: a password reset in the demo prints its mail on the console.
        assert user.email == f"{username}@{organisation}.example", username
        assert re.search(rf"^\s+{re.escape(username)}\s+{role}", demo, re.MULTILINE), username
    assert PASSWORD in demo
    assert "http://127.0.0.1:8000/admin/" in demo


def test_it_has_lists_to_intermediaries_consistent_with_its_returns(demo: str) -> None:
    lists = CaseList.objects.filter(organisation__slug__in=["ngo-a", "ngo-b"])
    assert set(lists.values_list("intermediary__slug", flat=True)) == {"qatar", "vatican", "south-africa"}
    assert {sent_on.year for sent_on in lists.values_list("sent_on", flat=True)} == {2024}
    assert lists.filter(state="closed").exists() and lists.filter(state="sent").exists()
    answers = ListAnswer.objects.filter(item__case_list__in=lists)
    # Answers over months, and none moved a case: the returns were already in the history.
    days = sorted(set(answers.values_list("answered_on", flat=True)))
    assert (days[-1] - days[0]).days > 180
    assert not answers.exclude(status_change=None).exists()
    returned = answers.filter(answer="returned").values_list(
        "item__case_id", "item__case_list__intermediary_id", "answered_on", "item__case_list__sent_on"
    )
    assert len(returned) >= 60
    for case_id, via_id, answered_on, sent_on in returned:
        assert sent_on < answered_on
        assert StatusChange.objects.filter(
            case_id=case_id, to_status="repatriated", via_id=via_id, occurred_on=answered_on
        ).exists(), case_id
    # Some children are still waiting for any answer.
    assert ListItem.objects.filter(case_list__in=lists, latest_answer="").exists()


def test_it_adds_nothing_when_run_again_and_keeps_the_logins_and_codes(demo: str, logins_file: Path) -> None:
    counts = (
        Case.objects.count(),
        StatusChange.objects.count(),
        Organisation.objects.count(),
        User.objects.count(),
        CaseList.objects.count(),
        ListAnswer.objects.count(),
        Task.objects.count(),
        Task.objects.filter(state="done").count(),
        Notice.objects.count(),
    )
    codes_before = re.findall(CODES_LINE, demo, re.MULTILINE)
    assert len(codes_before) == 3 and all(len(line.split()) == 5 for _name, line in codes_before)
    out = io.StringIO()
    call_command("seed_demo", logins_file=str(logins_file), stdout=out, stderr=io.StringIO())
    output = out.getvalue()
    assert counts == (
        Case.objects.count(),
        StatusChange.objects.count(),
        Organisation.objects.count(),
        User.objects.count(),
        CaseList.objects.count(),
        ListAnswer.objects.count(),
        Task.objects.count(),
        Task.objects.filter(state="done").count(),
        Notice.objects.count(),
    )
    assert "already loaded" in output and "passwords were kept" in output
    assert f"Password for all of them (as given): {PASSWORD}" in output
    for user in User.objects.filter(username__in=["caseworker", "supervisor", "admin", "caseworker-b"]):
        assert user.check_password(PASSWORD)
    # The same backup codes, still working.
    assert re.findall(CODES_LINE, output, re.MULTILINE) == codes_before
    assert "http://127.0.0.1:8000/admin/" in output


def test_a_used_backup_code_is_no_longer_printed(demo: str, logins_file: Path) -> None:
    line = re.search(SUPERVISOR_CODES, demo, re.MULTILINE)
    assert line is not None
    used, *rest = line.group(1).split()
    # Used at a sign-in (the database keeps only its hash).
    device = BackupCodes.objects.get(user__username="supervisor")
    assert device.verify_token(used.upper())
    out = io.StringIO()
    call_command("seed_demo", logins_file=str(logins_file), stdout=out, stderr=io.StringIO())
    again = re.search(SUPERVISOR_CODES, out.getvalue(), re.MULTILINE)
    assert again is not None and again.group(1).split() == rest


def test_a_new_password_is_set_only_when_asked_for(demo: str, logins_file: Path) -> None:
    out = io.StringIO()
    call_command(
        "seed_demo",
        password="another-synthetic-password-42",
        logins_file=str(logins_file),
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "the password was changed" in out.getvalue()
    assert User.objects.get(username="caseworker").check_password("another-synthetic-password-42")
    assert "another-synthetic-password-42" in logins_file.read_text()
    assert oct(logins_file.stat().st_mode & 0o777) == "0o600"


def test_the_demo_caseworker_opens_on_overdue_and_upcoming_follow_ups(demo: str) -> None:
    from casework.work import my_work

    caseworker = User.objects.get(username="caseworker")
    today = timezone.localdate()
    work = my_work(caseworker, today=today, now=timezone.now())
    assert work.overdue_count > 0 and work.due_soon_count > 0, work
    # Follow-ups the rules would have made: verifications of recent reports and check-ins after returns.
    kinds = set(Task.objects.filter(assigned_to=caseworker).values_list("kind", flat=True))
    assert {"verify_report", "check_after_return"} <= kinds
    # Every follow-up is on a case of the assignee's organisation, and some were done already.
    assert not Task.objects.exclude(case__organisation_id=F("assigned_to__organisation_id")).exists()
    assert Task.objects.filter(state="done").exists()
    # The bell rings: moves others made on the caseworker's cases, counted unread.
    notices = Notice.objects.filter(user=caseworker)
    assert notices.exists() and caseworker.unread_notices == notices.count()
    assert not notices.filter(by="caseworker").exists()


def test_it_plants_children_reported_by_both_ngos_in_the_hosts_queue(demo: str, tmp_path: Path) -> None:
    from linkage import selectors
    from linkage.models import CaseEncoding

    supervisor = User.objects.get(username="supervisor")  # NGO A's, the host's
    across = list(selectors.review_pairs(supervisor, across=True))
    assert len(across) == 24
    assert all({pair.case_a.organisation.slug, pair.case_b.organisation.slug} == {"ngo-a", "ngo-b"} for pair in across)
    assert all(pair.case_a.sex == pair.case_b.sex and pair.score >= 0.82 for pair in across)
    assert len(selectors.review_pairs(supervisor, across=False)) == 3  # NGO A's own, reported twice
    assert "Planted 24 children reported by both NGO A and NGO B" in demo
    encoded = CaseEncoding.objects.count()
    out = io.StringIO()
    call_command("seed_demo", logins_file=str(tmp_path / "again.json"), stdout=out, stderr=io.StringIO())
    assert CaseEncoding.objects.count() == encoded and "Planted" not in out.getvalue()
