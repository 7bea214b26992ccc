"""``manage.py verify_audit``: walk the hash chains of the status history and the access log.

Prints, for each table, the rows checked, the notes erased by the retention
policy, and the first link that does not hold (a row changed, added or
removed around the application). Exits with 1 when a chain is broken.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from casework import audit_chain


class Command(BaseCommand):
    help = "Check the hash chains of the status history and the access log; report the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="list every broken link, not only the first")

    def handle(self, *args: Any, **options: Any) -> None:
        broken = False
        for report in audit_chain.verify_all():
            if report.intact:
                erased = (
                    f", {report.erased_notes:,} notes erased by the retention policy" if report.erased_notes else ""
                )
                self.stdout.write(f"{report.table}: {report.rows:,} rows, chain intact{erased}.")
                continue
            broken = True
            self.stdout.write(f"{report.table}: {report.rows:,} rows, CHAIN BROKEN. First broken link:")
            self.stdout.write(f"  {report.first_broken}")
            if options["all"]:
                for problem in report.problems[1:]:
                    self.stdout.write(f"  {problem}")
            elif len(report.problems) > 1:
                self.stdout.write(f"  ({len(report.problems) - 1} more: --all lists them)")
        if broken:
            raise CommandError("An audit chain is broken: see above.", returncode=1)
