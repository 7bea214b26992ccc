"""``manage.py figures``: print the exact figures of DESIGN.md section 4, computed now (for staff, not for publication),
or with ``--release N`` an approved release as it was published.

What may be published is a release: ``manage.py release_figures`` makes one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import Organisation
from reports import exports, selectors, services
from reports.figures import compute_figures, consistent_read
from reports.models import Snapshot


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(value) from None


class Command(BaseCommand):
    help = (
        "Print the exact figures as of a date (default: today), computed now with the same function as the "
        "snapshot task. Exact figures are for staff: what may be published is a release (release_figures)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD", help="the date (default: today)")
        parser.add_argument(
            "--release",
            type=int,
            metavar="N",
            help="print approved release N as published (its method and parameters included) instead",
        )
        parser.add_argument("--format", choices=("json", "csv", "hxl"), default="json", help="output (default: json)")
        parser.add_argument("--organisation", metavar="SLUG", help="only this organisation's cases")
        parser.add_argument(
            "--save",
            action="store_true",
            help="also store them as a snapshot, shown on the figures page (all organisations' cases)",
        )
        parser.add_argument(
            "--unless-saved",
            action="store_true",
            help="with --save: when a snapshot as of that date is already stored, print it and store no other",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["release"] is not None:
            self._release(options)
            return
        self.started = timezone.now()
        as_of = options["as_of"] or timezone.localdate()
        if as_of > timezone.localdate():
            raise CommandError(f"{as_of.isoformat()} is in the future: figures can only describe the past.")
        organisation_id = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation “{options['organisation']}”.")
            organisation_id = organisation.pk
        if options["save"]:
            if organisation_id is not None:
                raise CommandError("A snapshot covers every organisation: leave out --organisation with --save.")
            figures = self._save(as_of, reuse=options["unless_saved"])
        else:
            with consistent_read():
                figures = compute_figures(as_of=as_of, organisation_id=organisation_id)
        if options["format"] == "json":
            output = exports.to_json(figures)
        else:
            output = exports.to_csv(figures, hxl=options["format"] == "hxl")
        self.stdout.write(output, ending="")

    def _release(self, options: dict[str, Any]) -> None:
        others = [name for name in ("as_of", "organisation", "save", "unless_saved") if options[name]]
        if others:
            raise CommandError(
                "--release prints a release as it was published: leave out --" + others[0].replace("_", "-")
            )
        release = selectors.release_by_number(options["release"])
        if release is None:
            raise CommandError(f"No approved release {options['release']}.")
        if options["format"] == "json":
            output = exports.release_json(release)
        else:
            output = exports.release_csv(release, hxl=options["format"] == "hxl")
        self.stdout.write(output, ending="")

    def _save(self, as_of: dt.date, *, reuse: bool) -> dict[str, Any]:
        """Compute a snapshot here, with the code the task runs, and return its figures."""
        snapshot = services.create_command_snapshot(as_of=as_of, reuse=reuse)
        if snapshot.state != Snapshot.State.DONE or snapshot.exact is None:
            raise CommandError(f"Snapshot {snapshot.pk} was not computed: {snapshot.error or snapshot.state}")
        if snapshot.trigger == Snapshot.Trigger.COMMAND and snapshot.requested_at >= self.started:
            self.stderr.write(f"Stored snapshot {snapshot.pk} ({snapshot.duration_ms} ms).")
        else:
            self.stderr.write(f"Snapshot {snapshot.pk} as of {as_of.isoformat()} was already stored: none added.")
        return dict(snapshot.exact)
