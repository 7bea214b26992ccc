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
        parser.add_argument(
            "--expect",
            action="append",
            default=[],
            metavar="TABLE:ID:HASH",
            help="a link printed by an earlier run and kept outside the database: it must still be there "
            "(catches a rewrite by someone who recomputed the chain); repeatable",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expected = [self._anchor(value) for value in options["expect"]]
        broken = False
        for report in audit_chain.verify_all():
            if report.intact:
                erased = (
                    f", {report.erased_notes:,} notes erased by the retention policy" if report.erased_notes else ""
                )
                self.stdout.write(f"{report.table}: {report.rows:,} rows, chain intact{erased}.")
                if report.last_id is not None:
                    # Keep this line outside the database (a daily job's log, an e-mail): --expect checks it later.
                    self.stdout.write(f"  last link: {report.table}:{report.last_id}:{report.last_hash}")
                continue
            broken = True
            self.stdout.write(f"{report.table}: {report.rows:,} rows, CHAIN BROKEN. First broken link:")
            self.stdout.write(f"  {report.first_broken}")
            if options["all"]:
                for problem in report.problems[1:]:
                    self.stdout.write(f"  {problem}")
            elif len(report.problems) > 1:
                self.stdout.write(f"  ({len(report.problems) - 1} more: --all lists them)")
        for table, row_id, link in expected:
            anchor_problem = audit_chain.check_anchor(table, row_id, link)
            if anchor_problem is None:
                self.stdout.write(f"{table}:{row_id}: the recorded link is still in the chain.")
            else:
                broken = True
                self.stdout.write(f"RECORDED LINK BROKEN: {anchor_problem}")
        if broken:
            raise CommandError("An audit chain is broken: see above.", returncode=1)

    @staticmethod
    def _anchor(value: str) -> tuple[str, int, str]:
        table, _sep, rest = value.partition(":")
        row_id, _sep, link = rest.partition(":")
        if not (table and row_id.isdigit() and len(link) == 64 and all(c in "0123456789abcdef" for c in link)):
            raise CommandError(f"--expect {value!r}: use TABLE:ID:HASH as printed by verify_audit (a 64-digit hash).")
        return table, int(row_id), link
