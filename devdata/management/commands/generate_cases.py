"""``manage.py generate_cases``: a door onto ``devdata.scale.generate_cases``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug
from tqdm import tqdm

from devdata.scale import generate_cases


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


class Command(BaseCommand):
    help = (
        "Add N synthetic cases, with about 3.5 status changes each, to an organisation (created if missing), "
        "for benchmarks. All in one transaction; on PostgreSQL rows are streamed with COPY."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=_positive, required=True, metavar="N", help="how many cases to add")
        parser.add_argument(
            "--organisation", required=True, metavar="SLUG", help="owner of the cases (created, kind ngo, if missing)"
        )
        parser.add_argument("--seed", type=int, metavar="S", help="random seed, to repeat a run (default: random)")
        parser.add_argument(
            "--check-moves",
            action="store_true",
            help="run every generated move through the status machine's rules as it is made (about twice as slow)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal)")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["organisation"]
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"“{slug}” is not a slug: use letters, digits, hyphens and underscores.") from None
        total = options["cases"]
        # tqdm writes to the real stream: Django's wrapper adds a newline to every write.
        show = not options["no_progress"] and options["verbosity"] > 0 and sys.stderr.isatty()
        with tqdm(total=total, unit="case", unit_scale=True, file=sys.stderr, disable=not show) as bar:
            result = generate_cases(
                cases=total,
                organisation_slug=slug,
                seed=options["seed"],
                check=options["check_moves"],
                progress=bar.update,
            )
        created = " (created)" if result.organisation_created else ""
        rate = result.cases / result.seconds if result.seconds else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {result.cases:,} synthetic cases with {result.changes:,} status changes for "
                f"{result.organisation.slug}{created} in {result.seconds:.1f} s ({rate:,.0f} cases/s, "
                f"{result.method}, seed {result.seed})."
            )
        )
