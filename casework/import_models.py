"""The web import of case files (casework.web_import): an upload's progress, and the column mappings remembered.

Kept apart from casework.models (which is long enough); casework.models imports
these, so Django finds them. Neither model holds a value of the files: the
uploaded files themselves live in ``settings.IMPORT_PRIVATE_DIR`` until the
import ends, and the problems found name a line and a column, never a value.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    """One upload, from the files to their import: mapping, checking, confirmation, writing."""

    class State(models.TextChoices):
        MAPPING = "mapping", _("Columns to match")
        CHECKING = "checking", _("Being checked")
        INVALID = "invalid", _("Problems found")
        READY = "ready", _("Ready to import")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        FAILED = "failed", _("Not imported")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    # Where the files and the progress are (uploaded, being checked or written): the sweep leaves these.
    ACTIVE_STATES = frozenset({State.MAPPING, State.CHECKING, State.INVALID, State.READY, State.RUNNING})
    # What the poller waits for.
    WORKING_STATES = frozenset({State.CHECKING, State.RUNNING})

    # Not guessable: it names the job in the URLs and its private directory.
    key = models.UUIDField(_("key"), default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", verbose_name=_("organisation"), on_delete=models.CASCADE, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.MAPPING)
    # The files' names as uploaded (shown in the messages), their format (csv or xlsx) and header rows.
    cases_name = models.CharField(_("cases file"), max_length=120)
    cases_format = models.CharField(max_length=4)
    cases_headers = models.JSONField(default=list)
    events_name = models.CharField(_("status changes file"), max_length=120, blank=True)
    events_format = models.CharField(max_length=4, blank=True)
    events_headers = models.JSONField(default=list)
    # The sheet of the cases' workbook that holds the status changes, when they came in it rather than in a
    # file of their own (that file is then the same workbook); "" for a file's first sheet.
    events_sheet = models.CharField(max_length=31, blank=True)
    # {"cases": {header: column or ""}, "events": {...}}: "" means the column is ignored.
    mapping = models.JSONField(default=dict)
    # The progress of the check or the write (rows done out of total).
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # What the check found: every problem as "file:line: column: reason" (one a line), or the counts.
    problems = models.TextField(blank=True)
    problem_count = models.PositiveIntegerField(default=0)
    case_count = models.PositiveIntegerField(default=0)
    event_count = models.PositiveIntegerField(default=0)
    detail_count = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # The references file (source_ref,reference) of a finished import, for its importer until then.
    references_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("web import")
        verbose_name_plural = _("web imports")
        indexes = [models.Index(fields=["organisation", "-created_at"], name="casework_importjob_org_idx")]

    def __str__(self) -> str:
        return f"{self.cases_name} ({self.get_state_display()})"

    @property
    def percent(self) -> int:
        return min(100, self.done * 100 // self.total) if self.total else 0

    @property
    def working(self) -> bool:
        return self.state in self.WORKING_STATES


class ImportMapping(models.Model):
    """An organisation's answer to "which column is this header?", remembered for its next files."""

    class Sheet(models.TextChoices):
        CASES = "cases", _("Cases")
        EVENTS = "events", _("Status changes")

    organisation = models.ForeignKey(
        "accounts.Organisation", verbose_name=_("organisation"), on_delete=models.CASCADE, related_name="+"
    )
    sheet = models.CharField(_("file"), max_length=6, choices=Sheet.choices)
    # The header as normalised by casework.importing.sources.header_key (spacing and letter case ignored).
    header = models.CharField(_("header"), max_length=200)
    # An importer's column, or "" for a column to ignore.
    column = models.CharField(_("column"), max_length=40, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("remembered column")
        verbose_name_plural = _("remembered columns")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "sheet", "header"], name="casework_importmapping_unique")
        ]

    def __str__(self) -> str:
        return f"{self.header} → {self.column or '-'}"
