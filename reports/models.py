"""Snapshots of the figures: computed once, then never changed."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Snapshot(models.Model):
    """The figures as of a date, exact and published, with when and from what they were computed.

    A snapshot is queued, then running, then done or failed. Its figures are
    written once, in the same statement that marks it done (see
    ``reports.services.compute_snapshot``); a done snapshot is never saved
    again. A running snapshot whose worker was lost (no heartbeat for
    ``SNAPSHOT_STALL_SECONDS``) is queued again by the sweep, and failed after
    a few attempts.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        REQUEST = "request", _("Requested on the figures page")
        NIGHTLY = "nightly", _("Nightly")
        COMMAND = "command", _("Command line")

    OPEN_STATES: ClassVar[tuple[str, ...]] = (State.QUEUED, State.RUNNING)

    as_of = models.DateField(_("as of"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("computation time (ms)"), null=True, blank=True)
    # How many times a worker started computing it: a snapshot whose worker was lost
    # is restarted by the sweep, and failed after a few attempts.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The last sign of life, by the database's clock: when it was last queued, or claimed by a worker,
    # which refreshes it every few seconds while it computes. Running with no heartbeat for
    # SNAPSHOT_STALL_SECONDS: its worker was lost (reports.services.sweep_stalled_snapshots).
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    # The claim of the computation under way (random, one per attempt): only the holder of the claim
    # may write the figures, so a worker thought lost that finishes late cannot overwrite a restart's.
    claim = models.CharField(_("computation claim"), max_length=32, blank=True, default="")
    # When the sweep last found its worker lost and queued it again.
    restarted_at = models.DateTimeField(_("restarted at"), null=True, blank=True)
    min_cell = models.PositiveSmallIntegerField(_("minimum published cell (k)"))
    exact = models.JSONField(_("exact figures"), null=True, blank=True)
    published = models.JSONField(_("published figures"), null=True, blank=True)
    # The exact figures of each organisation's own cases, keyed by organisation id.
    by_organisation = models.JSONField(_("exact figures by organisation"), null=True, blank=True)
    # What the figures were computed from, read in the same transaction.
    source_cases = models.PositiveBigIntegerField(_("cases in the register"), null=True, blank=True)
    source_status_changes = models.PositiveBigIntegerField(_("status changes in the register"), null=True, blank=True)
    source_last_change_id = models.BigIntegerField(_("last status change id"), null=True, blank=True)
    source_last_case_update = models.DateTimeField(_("last case update"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("figures snapshot")
        verbose_name_plural = _("figures snapshots")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(state="done")
                | models.Q(
                    exact__isnull=False,
                    published__isnull=False,
                    by_organisation__isnull=False,
                    finished_at__isnull=False,
                    source_cases__isnull=False,
                ),
                name="snapshot_done_is_complete",
            ),
            # A second beat for the same night (a restarted beat, a duplicate
            # message) finds the first night's snapshot instead of adding one.
            models.UniqueConstraint(
                fields=["as_of"],
                condition=models.Q(trigger="nightly") & ~models.Q(state="failed"),
                name="snapshot_one_nightly_per_day",
            ),
        ]
        indexes = [models.Index(fields=["state", "-as_of", "-finished_at"], name="snapshot_latest_done")]

    def __str__(self) -> str:
        return f"{self.as_of.isoformat()} ({self.get_state_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The services move a snapshot along with conditional updates; a save is a creation.
        if not self._state.adding and Snapshot.objects.filter(pk=self.pk, state=self.State.DONE).exists():
            raise PermissionError("A computed snapshot is immutable: request a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.state == self.State.DONE:
            raise PermissionError("A computed snapshot is immutable and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
