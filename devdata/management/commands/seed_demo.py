"""``manage.py seed_demo``: a door onto ``devdata.demo.seed_demo``.

The first run loads the data, sets a password for the demo users, makes
backup codes for those who need a second factor, prints them all, and keeps
them in a login sheet (``.demo-logins.json``, readable by its owner only) so
that a later run prints the same logins again instead of changing them under
a demo that is already running. ``--password`` on a later run sets a new
password on purpose; ``make demo-reset`` starts over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_static.models import StaticToken  # type: ignore[import-untyped, unused-ignore]

from accounts import sealing
from accounts.models import User
from accounts.permissions import second_factor_required
from accounts.two_factor import new_backup_codes
from devdata.demo import DEMO_AS_OF, DemoResult, seed_demo

BANNER = "SYNTHETIC DEMO DATA: invented organisations, institutions and cases; no real person's data."
DEMO_BACKUP_CODES = 5


class Command(BaseCommand):
    help = (
        "Load the synthetic demo data: two NGOs, 13 institutions, demo users and 20,000 reported cases "
        f"(1,189 repatriated) as of {DEMO_AS_OF.isoformat()}, with a history that goes on up to yesterday. "
        "Run again, it adds nothing and prints the same logins (kept in the login sheet)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            metavar="P",
            help="password for every demo user (default: a new random one on the first run, kept afterwards)",
        )
        parser.add_argument(
            "--port", type=int, default=8000, help="the port the demo is served on, for the printed links"
        )
        parser.add_argument(
            "--logins-file",
            metavar="PATH",
            default=str(Path(settings.BASE_DIR) / ".demo-logins.json"),
            help="where the demo's logins and backup codes are kept between runs (default: .demo-logins.json)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"]
        if password is not None and not password.strip():
            raise CommandError("The password is empty: give one, or leave out --password for a random one.")
        sheet_path = Path(options["logins_file"])
        self.stdout.write(self.style.WARNING(BANNER))
        result = seed_demo(password=password)
        for warning in result.password_warnings:
            self.stderr.write(self.style.WARNING(f"Weak demo password: {warning}"))
        sheet = _read_sheet(sheet_path)
        if result.password is not None:
            # A new password (first run, or asked for): new backup codes too, and a new sheet.
            kind = "random" if result.password_generated else "as given"
            sheet = {"password": result.password, "kind": kind, "codes": self._new_codes(result)}
            _write_sheet(sheet_path, sheet)
        self._report(result, sheet, port=options["port"])

    def _new_codes(self, result: DemoResult) -> dict[str, list[str]]:
        """Demo users who must pass a second factor get one-time backup codes, so the demo needs no phone."""
        names = [login.username for login in result.logins]
        users = User.objects.filter(username__in=names)
        return {
            user.username: new_backup_codes(user, count=DEMO_BACKUP_CODES)
            for user in users
            if second_factor_required(user)
        }

    def _report(self, result: DemoResult, sheet: dict[str, Any] | None, *, port: int) -> None:
        if result.created:
            self.stdout.write(
                f"Created {result.cases:,} synthetic cases with {result.changes:,} status changes in "
                f"{result.seconds:.1f} s: {result.reported:,} reported and {result.repatriated:,} repatriated "
                f"as of {DEMO_AS_OF.isoformat()}, and a history up to yesterday."
            )
        else:
            kept = "the demo users' passwords were kept" if result.password is None else "the password was changed"
            self.stdout.write(
                f"The demo data is already loaded (ngo-a and ngo-b hold {result.existing_cases:,} cases): "
                f"nothing added; {kept}. To start over: make demo-reset."
            )
        if result.links.created:
            self.stdout.write(
                f"Planted {len(result.links.across)} children reported by both NGO A and NGO B, and "
                f"{len(result.links.within)} reported twice by NGO A, for review at /links/ (supervisor); "
                f"{result.links.encoded} cases have encoded identifying details (synthetic)."
            )
        self.stdout.write("")
        self.stdout.write("Demo logins:")
        width = max(len(login.username) for login in result.logins)
        for login in result.logins:
            role = f"{login.role}, superuser" if login.is_superuser else login.role
            self.stdout.write(f"  {login.username.ljust(width)}  {role:<22}  {login.organisation}")
        if sheet is None:
            self.stdout.write(
                "Password: as set when the demo was first loaded (the login sheet is missing). "
                "Set a new one with: manage.py seed_demo --password P"
            )
        else:
            self.stdout.write(f"Password for all of them ({sheet.get('kind', 'random')}): {sheet['password']}")
            self._second_factor_codes(sheet.get("codes", {}))
        self.stdout.write(f"Sign in: http://127.0.0.1:{port}/accounts/login/   Admin: http://127.0.0.1:{port}/admin/")
        self.stdout.write(self.style.WARNING(BANNER))

    def _second_factor_codes(self, codes: dict[str, list[str]]) -> None:
        unused = _unused(codes)
        if not unused:
            return
        self.stdout.write("")
        self.stdout.write(
            "These users are asked for a second factor after their password. One-time backup codes "
            "(each works once; or set up an authenticator app on the account page):"
        )
        width = max(len(name) for name in unused)
        for username, left in unused.items():
            shown = "  ".join(left) if left else "(all used: make new ones on the account page, or make demo-reset)"
            self.stdout.write(f"  {username.ljust(width)}  {shown}")


def _unused(codes: dict[str, list[str]]) -> dict[str, list[str]]:
    """The sheet's codes that still work (a used code is gone from the database, which keeps only hashes)."""
    live = set(
        StaticToken.objects.filter(device__user__username__in=list(codes), device__confirmed=True).values_list(
            "device__user__username", "token"
        )
    )
    return {
        username: [
            code
            for code in listed
            if any((username, digest) in live for digest in sealing.code_digests(code, sealing.BACKUP_CODES))
        ]
        for username, listed in codes.items()
    }


def _read_sheet(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("password"), str) else None


def _write_sheet(path: Path, sheet: dict[str, Any]) -> None:
    # Synthetic logins of a local demo, readable by their owner only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(sheet, handle, indent=2)
