"""``manage.py release_figures --as-of YYYY-MM-DD``: make a release, approved from the command line.

The door for scripted publication (DESIGN section 10): the same service as
the releases pages (order, spacing and the privacy-loss budget checked; a
note screened for personal data), recorded as prepared and approved from the
command line. The release's number is printed on the last line.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports import releases


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(value) from None


class Command(BaseCommand):
    help = (
        "Make a release of the figures as of a date: protected figures with exact headline totals, "
        "approved from the command line. Prints the release's number on its last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD", required=True, help="the release's date")
        parser.add_argument("--note", default="", help="a note kept with the release (no personal data)")
        parser.add_argument(
            "--unless-released",
            action="store_true",
            help="when a release as of that date exists, print its number and make no other",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            release, made = releases.release_figures_from_command(
                as_of=options["as_of"], note=options["note"], unless_released=options["unless_released"]
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if made:
            self.stderr.write(
                f"Release {release.number} as of {release.as_of.isoformat()}: ρ = {release.rho:.4f} spent, "
                f"noise σ = {release.sigma:.2f} per cell."
            )
        else:
            self.stderr.write(f"Release {release.number} as of {release.as_of.isoformat()} exists already.")
        self.stdout.write(str(release.number))
