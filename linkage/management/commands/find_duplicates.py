"""``manage.py find_duplicates``: every candidate pair, compared afresh, as CSV, best first."""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organisation
from linkage import selectors


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--min-score {text!r} is not a number between 0 and 1.") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise CommandError(f"--min-score {text!r} is not a number between 0 and 1.")
    return value


class Command(BaseCommand):
    help = (
        "Compare the encoded identifying details of every case (or of one organisation's cases) and print each "
        "pair scoring at least --min-score as reference_a,reference_b,score, best first. Reads only: the review "
        "queue is not changed. Pairs across organisations are printed only without --organisation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--organisation", metavar="SLUG", help="only pairs of two cases of this organisation (its duplicates)"
        )
        parser.add_argument(
            "--min-score",
            metavar="X",
            type=str,
            default=None,
            help="the lowest score printed, 0 to 1 (default: the review score, LINKAGE_REVIEW_SCORE, "
            f"now {settings.LINKAGE_REVIEW_SCORE})",
        )
        parser.add_argument("--format", choices=["csv"], default="csv", help="csv (the only format)")

    def handle(self, *args: Any, **options: Any) -> None:
        threshold = settings.LINKAGE_REVIEW_SCORE if options["min_score"] is None else _score(options["min_score"])
        organisation = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation has the slug “{options['organisation']}”.")
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(["reference_a", "reference_b", "score"])
        for reference_a, reference_b, score in selectors.duplicate_pairs(
            threshold=threshold, organisation_id=organisation.pk if organisation else None
        ):
            writer.writerow([reference_a, reference_b, f"{score:.3f}"])
