"""``manage.py import_cases``: a door onto ``casework.importing``."""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import ngettext

from accounts.models import Organisation
from casework.importing import CASE_COLUMNS, EVENT_COLUMNS, ImportErrors, apply_import, plan_import


class _Discard:
    """Where the references go when no file was asked for (keeping them would grow with the file)."""

    def write(self, text: str) -> int:
        return len(text)


class Command(BaseCommand):
    help = (
        "Import an organisation's cases, and optionally their status history, from UTF-8 CSV files with a "
        "header row. All or nothing: if any row is wrong, nothing is written and every problem is listed as "
        f"FILE:LINE: COLUMN: REASON. Cases columns: {', '.join(CASE_COLUMNS)}. "
        f"Events columns: {', '.join(EVENT_COLUMNS)}. The identifying details (given_name, family_name, "
        "patronymic, birth_date as YYYY-MM-DD or YYYY-MM, birth_place) are optional: they are encoded to find "
        "the same child in other reports, and never stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "cases_file",
            metavar="CASES.csv",
            type=Path,
            help="one case per row; source_ref is the organisation's own reference (stored only as a keyed hash)",
        )
        parser.add_argument(
            "--events",
            metavar="EVENTS.csv",
            type=Path,
            help="status changes, applied in file order; source_ref names a case of CASES.csv",
        )
        parser.add_argument(
            "--organisation", required=True, metavar="SLUG", help="slug of the organisation that owns the cases"
        )
        parser.add_argument("--dry-run", action="store_true", help="check the files and report; write nothing")
        parser.add_argument(
            "--references-out",
            metavar="FILE",
            type=Path,
            help="write source_ref,reference for every imported case to FILE (a new file, readable by you only), "
            "to tie the register's references back to your own records",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal)")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["organisation"]
        try:
            organisation = Organisation.objects.get(slug=slug)
        except Organisation.DoesNotExist:
            raise CommandError(f"No organisation has the slug “{slug}”: nothing was imported.") from None
        # tqdm needs the real stream: Django's wrapper adds a newline to every write.
        progress = None if options["no_progress"] or options["verbosity"] == 0 else sys.stderr
        references_path: Path | None = options["references_out"]
        if references_path is not None and options["dry_run"]:
            raise CommandError("--references-out writes the references of imported cases: --dry-run imports none.")
        # Opened before anything is imported, so that a path that cannot be written stops the import first.
        references = self._open_new(references_path) if references_path is not None else None
        try:
            self._import(options, organisation, progress, references)
        except BaseException:
            if references is not None and references_path is not None:
                references.close()
                with suppress(OSError):
                    os.unlink(references_path)
            raise
        if references is not None:
            references.close()
            self.stdout.write(f"References written to {references_path}.")

    @staticmethod
    def _open_new(path: Path) -> IO[str]:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} exists: give a new file for --references-out. Nothing was imported.") from None
        except OSError as exc:
            raise CommandError(
                f"Cannot create {path} ({exc.strerror or exc}) for --references-out. Nothing was imported."
            ) from None
        return open(descriptor, "w", newline="", encoding="utf-8")

    def _import(
        self, options: dict[str, Any], organisation: Organisation, progress: Any, references: IO[str] | None
    ) -> None:
        try:
            plan = plan_import(
                cases_file=options["cases_file"],
                events_file=options["events"],
                organisation=organisation,
                progress=progress,
            )
            if options["dry_run"]:
                self.stdout.write(
                    f"Checked: {self._summary(plan.case_count, plan.event_count, organisation)}. "
                    "Nothing was written (--dry-run)."
                )
                return
            # The organisation's own values are written back as they were given (they are its own file's),
            # a row at a time as the cases are written; the file is deleted if the import fails.
            result = apply_import(plan, progress=progress, references_out=references or _Discard())
        except ImportErrors as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            count = len(exc.errors)
            raise CommandError(
                ngettext("Nothing was imported: %(count)d problem.", "Nothing was imported: %(count)d problems.", count)
                % {"count": count}
            ) from None
        self.stdout.write(self.style.SUCCESS(f"Imported {self._summary(result.cases, result.events, organisation)}."))

    @staticmethod
    def _summary(cases: int, events: int, organisation: Organisation) -> str:
        cases_text = ngettext("%(count)d case", "%(count)d cases", cases) % {"count": cases}
        events_text = ngettext("%(count)d status change", "%(count)d status changes", events) % {"count": events}
        return f"{cases_text} and {events_text} for {organisation.slug}"
