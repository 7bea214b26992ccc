"""``manage.py seed_demo``: a door onto ``casework.demo.seed_demo``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from casework.demo import DEMO_ADMIN_URL, DEMO_AS_OF, DemoResult, seed_demo
from partners.auth import new_backup_codes, second_factor_required
from partners.models import User

BANNER = "SYNTHETIC DEMO DATA: invented organisations, institutions and cases; no real person's data."


class Command(BaseCommand):
    help = (
        "Load the synthetic demo data: two NGOs, 13 institutions, demo users and 20,000 reported cases "
        f"(1,189 repatriated) as of {DEMO_AS_OF.isoformat()}. Run again, it adds nothing and only resets "
        "the demo users' passwords."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            metavar="P",
            help="password for every demo user (default: a new random one, printed at the end)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"]
        if password is not None and not password.strip():
            raise CommandError("The password is empty: give one, or leave out --password for a random one.")
        self.stdout.write(self.style.WARNING(BANNER))
        result = seed_demo(password=password)
        for warning in result.password_warnings:
            self.stderr.write(self.style.WARNING(f"Weak demo password: {warning}"))
        self._report(result)

    def _report(self, result: DemoResult) -> None:
        if result.created:
            self.stdout.write(
                f"Created {result.cases:,} synthetic cases with {result.changes:,} status changes in "
                f"{result.seconds:.1f} s: {result.reported:,} reported and {result.repatriated:,} repatriated "
                f"as of {DEMO_AS_OF.isoformat()}."
            )
        else:
            self.stdout.write(
                f"The demo data is already loaded (ngo-a and ngo-b hold {result.existing_cases:,} cases): "
                "nothing added; the demo users' passwords were reset."
            )
        self.stdout.write("")
        self.stdout.write("Demo logins:")
        width = max(len(login.username) for login in result.logins)
        for login in result.logins:
            role = f"{login.role}, superuser" if login.is_superuser else login.role
            self.stdout.write(f"  {login.username.ljust(width)}  {role:<22}  {login.organisation}")
        kind = "random, for this run" if result.password_generated else "as given"
        self.stdout.write(f"Password for all of them ({kind}): {result.password}")
        self._second_factor_codes(result)
        self.stdout.write(f"Admin: {DEMO_ADMIN_URL}")
        self.stdout.write(self.style.WARNING(BANNER))

    def _second_factor_codes(self, result: DemoResult) -> None:
        """Demo users who must pass a second factor get one-time backup codes, so the demo needs no phone."""
        users = {user.username: user for user in User.objects.filter(username__in=[x.username for x in result.logins])}
        needing = [login.username for login in result.logins if second_factor_required(users[login.username])]
        if not needing:
            return
        self.stdout.write("")
        self.stdout.write(
            "These users are asked for a second factor after their password. One-time backup codes "
            "(each works once; or set up an authenticator app from the code page):"
        )
        width = max(len(name) for name in needing)
        for username in needing:
            codes = new_backup_codes(users[username])[:3]
            self.stdout.write(f"  {username.ljust(width)}  {'  '.join(codes)}")
