"""``manage.py figures``: print the figures of DESIGN.md section 4, computed now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from partners.models import Organisation
from reports import exports
from reports.disclosure import publish
from reports.figures import compute_figures, consistent_read


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(value) from None


class Command(BaseCommand):
    help = (
        "Print the figures as of a date (default: today), computed now with the same function as the "
        "snapshot task: exact, or with --published the variant with small cells hidden."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD", help="the date (default: today)")
        parser.add_argument(
            "--published",
            action="store_true",
            help=f"hide small cells as published figures do (k = FIGURES_MIN_CELL, now {settings.FIGURES_MIN_CELL})",
        )
        parser.add_argument("--format", choices=("json", "csv", "hxl"), default="json", help="output (default: json)")
        parser.add_argument("--organisation", metavar="SLUG", help="only this organisation's cases")

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = options["as_of"] or timezone.localdate()
        if as_of > timezone.localdate():
            raise CommandError(f"{as_of.isoformat()} is in the future: figures can only describe the past.")
        organisation_id = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation “{options['organisation']}”.")
            organisation_id = organisation.pk
        with consistent_read():
            figures = compute_figures(as_of=as_of, organisation_id=organisation_id)
        if options["published"]:
            figures = publish(figures, k=settings.FIGURES_MIN_CELL)
        if options["format"] == "json":
            output = exports.to_json(figures)
        else:
            output = exports.to_csv(figures, hxl=options["format"] == "hxl")
        self.stdout.write(output, ending="")
