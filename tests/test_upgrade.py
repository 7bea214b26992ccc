"""A database made by the register as it was before the accounts app migrates to this layout, every row kept.

The earlier release is taken from git (its commit is ``BEFORE``), migrated and
filled with the demo data and some shares, tokens, webhooks, deliveries,
access-log rows, sign-in events and a snapshot; then this release migrates
the same database. Every table keeps every row, the demo's logins and the
partner's token still work, and the figures are those of the demo.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The last release before organisations and users moved to the accounts app.
BEFORE = "fda3422"
PASSWORD = "synthetic-upgrade-password-42"

FILL = """
import datetime as dt
from casework.audit import log_access
from casework.models import AccessLog, Case, StatusChange
from partners import services, webhooks
from partners.auth import record_event
from partners.models import AuthEvent, Organisation, User

ngo_a, qatar = Organisation.objects.get(slug="ngo-a"), Organisation.objects.get(slug="qatar")
supervisor = User.objects.get(username="supervisor")
cases = list(Case.objects.filter(organisation=ngo_a, status="located").order_by("id")[:5])
services.share_cases(owner=ngo_a, partner=qatar, cases=cases, scope="update", expires_at=None, shared_by=supervisor)
token, plain = services.create_token(organisation=qatar, scope="update", created_by=None, name="upgrade")
open("token.txt", "w").write(plain)
endpoint, _secret = webhooks.create_endpoint(
    organisation=qatar, url="https://partner.example.org/hook", created_by=None
)
change = StatusChange.objects.filter(case=cases[0]).order_by("id").last()
webhooks.plan_deliveries(change.pk)
log_access(action=AccessLog.Action.VIEW, door=AccessLog.Door.API, organisation_id=qatar.pk,
           case_ids=[case.pk for case in cases], token=token)
log_access(action=AccessLog.Action.LIST, door=AccessLog.Door.WEB, organisation_id=ngo_a.pk,
           case_ids=[case.pk for case in cases], user=supervisor)
record_event(AuthEvent.Kind.SIGN_IN, request=None, user=supervisor)
from django_otp.plugins.otp_totp.models import TOTPDevice
TOTPDevice.objects.create(
    user=supervisor, name="upgrade phone", confirmed=True, key="3132333435363738393031323334353637383930"
)
"""


def _git_has_release() -> bool:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return False
    probe = subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT, capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _git_has_release(), reason=f"needs the git history with release {BEFORE}")


def _environment(database_url: str, migration_url: str | None) -> dict[str, str]:
    skipped = ("DJANGO_", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
    env.update(DJANGO_DEBUG="1", DATABASE_URL=database_url, PYTHONDONTWRITEBYTECODE="1")
    if migration_url:
        env["MIGRATION_DATABASE_URL"] = migration_url
    return env


def _manage(tree: Path, database_url: str, *args: str, migration_url: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=_environment(database_url, migration_url),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{' '.join(args)} in {tree}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] != "sqlite_sequence"  # SQLite's own counters, one per table that has rows
        ]
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _postgres_counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as db:
        tables = [row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


@pytest.fixture
def earlier_release(tmp_path: Path) -> Path:
    tree = tmp_path / "earlier"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", BEFORE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _postgres_url(name: str) -> str | None:
    url = os.environ.get(name, "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _same_server(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + f"/{database}"


@dataclass(frozen=True)
class Upgrade:
    """Where the earlier release ran (one role, as it knew no other) and how this release connects."""

    owner_url: str  # the earlier release's only role, the tables' owner
    app_url: str  # this release's DATABASE_URL
    migration_url: str | None  # this release's MIGRATION_DATABASE_URL, when it runs as two roles


@pytest.fixture(params=["sqlite", "postgresql"])
def upgrade(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Upgrade]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
        yield Upgrade(owner_url=url, app_url=url, migration_url=None)
        return
    app = _postgres_url("DATABASE_URL")
    if app is None:
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI does)")
    import psycopg

    # With two roles (CI), the owner creates the database and the earlier release runs as it; this release
    # then connects as the application's role and migrates as the owner: the upgrade a deployment makes.
    owner = _postgres_url("MIGRATION_DATABASE_URL") or app
    name = f"upgrade_{uuid.uuid4().hex[:10]}"
    admin_url = owner.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    two_roles = owner != app
    yield Upgrade(
        owner_url=_same_server(owner, name),
        app_url=_same_server(app, name),
        migration_url=_same_server(owner, name) if two_roles else None,
    )
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_database_of_the_earlier_release_migrates_with_every_row_kept(earlier_release, upgrade, tmp_path):
    database_url = upgrade.owner_url
    counts = _postgres_counts if database_url.startswith("postgres") else None

    def count() -> dict[str, int]:
        if counts is not None:
            return counts(database_url)
        return _sqlite_counts(Path(database_url.removeprefix("sqlite:///")))

    _manage(earlier_release, database_url, "migrate", "--noinput", "-v", "0")
    seeded = _manage(earlier_release, database_url, "seed_demo", "--password", PASSWORD)
    # The backup codes it printed (stored in clear by that release).
    backup_codes = re.search(r"^  supervisor +((?:[a-z0-9]{8} *)+)$", seeded, re.MULTILINE)
    assert backup_codes is not None, seeded
    codes = backup_codes.group(1).split()
    _manage(earlier_release, database_url, "shell", "-c", FILL)
    _manage(earlier_release, database_url, "figures", "--as-of", "2025-02-02", "--save")
    token = (earlier_release / "token.txt").read_text().strip()
    before = count()
    assert before["casework_case"] > 20_000 and before["partners_share"] == 5
    assert before["partners_webhookdelivery"] >= 1 and before["casework_accesslog"] >= 10

    def manage(*args: str) -> str:  # this release, connected as it is deployed
        return _manage(ROOT, upgrade.app_url, *args, migration_url=upgrade.migration_url)

    migrated = manage("migrate", "--noinput")
    assert "Recorded accounts.0001_initial" in migrated

    after = count()
    for table, rows in before.items():
        if table in {"django_migrations", "django_content_type", "auth_permission"}:
            continue  # new migrations recorded; content types move rather than multiply (checked below)
        assert after.get(table) == rows, f"{table}: {rows} rows before, {after.get(table)} after"
    # New models get content types; the moved ones keep theirs (checked below: none left under partners).
    assert after["django_content_type"] >= before["django_content_type"]
    assert after["auth_permission"] >= before["auth_permission"]

    check = f"""
from django.contrib.auth import authenticate
from django.contrib.contenttypes.models import ContentType
from accounts.models import ApiToken, Organisation, User
from partners.tokens import authenticate_token
assert authenticate(username="caseworker", password={PASSWORD!r}) is not None, "the demo login"
assert authenticate(username="supervisor", password={PASSWORD!r}) is not None, "the demo login"
assert authenticate_token({token!r}) is not None, "the partner's token"
assert Organisation.objects.get(slug="qatar").name_uk == "Держава Катар"
assert ContentType.objects.filter(app_label="accounts", model="user").count() == 1
# Second factors stored in clear by the earlier release: sealed now, and still working.
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from accounts.models import AuthenticatorApp, BackupCodes
app = AuthenticatorApp.objects.get(name="upgrade phone")
assert app.key.startswith("$") and "3132333435" not in app.key
assert app.verify_token(f"{{totp(bytes.fromhex('3132333435363738393031323334353637383930')):06d}}")
codes = {codes!r}
assert not StaticToken.objects.filter(token__in=codes).exists()
assert BackupCodes.objects.get(user__username="supervisor").verify_token(codes[0])
assert not ContentType.objects.filter(app_label="partners", model__in=["user", "organisation"]).exists()
print("upgrade ok")
"""
    assert "upgrade ok" in manage("shell", "-c", check)
    figures = manage("figures", "--as-of", "2025-02-02")
    assert '"reported": 20000' in figures and '"repatriated": 1189' in figures
    # Nothing is left for makemigrations to do against the upgraded database.
    assert "No changes detected" in manage("makemigrations", "--check", "--dry-run")
    # The rows the earlier release wrote are chained into the audit trail the upgrade started.
    assert "intact" in manage("verify_audit")
