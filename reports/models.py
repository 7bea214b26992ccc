"""Snapshots of the figures (exact, internal: computed once, then never changed) and releases (published).

A release is protected figures as of a date (``reports.protection``), made
from a snapshot, prepared by a supervisor or analyst and approved by one or
two supervisors (``FIGURES_RELEASE_APPROVERS``), or from the command line;
then numbered and immutable: the model refuses to save or delete it, and on
PostgreSQL a trigger refuses to change or delete an approved release or any
approval, whatever role asks (migration 0005).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Snapshot(models.Model):
    """The exact figures as of a date, with when and from what they were computed: internal, never published.

    What leaves the register are releases (below), made from snapshots.

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
        RELEASE = "release", _("For a release")

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
    # k when the snapshot was asked for (releases record their own).
    min_cell = models.PositiveSmallIntegerField(_("minimum published cell (k)"))
    exact = models.JSONField(_("exact figures"), null=True, blank=True)
    # What a release protects beyond the figures (reports.figures.compute_release_series): release snapshots only.
    series = models.JSONField(_("exact release series"), null=True, blank=True)
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


class Release(models.Model):
    """Published figures as of a date: protected cells, exact headline totals, the method and its parameters.

    Numbered 1, 2, ... in the order of their dates, at least
    FIGURES_RELEASE_MIN_DAYS apart. A draft is seen only by those who may
    prepare or approve releases, and may be discarded; once approved it is
    published and never changes. ``rho`` is what it spent of each child's
    privacy-loss budget (``reports.services`` refuses a release that would
    take the releases of 365 days past FIGURES_PRIVACY_RHO_PER_YEAR).
    """

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft, awaiting approval")
        APPROVED = "approved", _("Approved and published")

    class Door(models.TextChoices):
        WEB = "web", _("Web")
        COMMAND = "command", _("Command line")

    number = models.PositiveIntegerField(_("number"), unique=True)
    as_of = models.DateField(_("as of"), unique=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DRAFT)
    snapshot = models.ForeignKey(
        Snapshot, verbose_name=_("made from snapshot"), on_delete=models.PROTECT, related_name="releases"
    )
    # The published figures, as they go out: JSON form of DESIGN section 4 with protected cells (null: fewer than k).
    figures = models.JSONField(_("published figures"))
    method = models.CharField(_("method"), max_length=40)
    parameters = models.JSONField(_("method parameters"))
    rho = models.FloatField(_("privacy loss spent (ρ)"))
    sigma = models.FloatField(_("noise standard deviation (σ)"))
    min_cell = models.PositiveSmallIntegerField(_("minimum published cell (k)"))
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("prepared by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    prepared_at = models.DateTimeField(_("prepared at"), default=timezone.now)
    prepared_through = models.CharField(_("prepared through"), max_length=10, choices=Door.choices)
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("release")
        verbose_name_plural = _("releases")
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(condition=models.Q(number__gte=1), name="release_number_from_one"),
            models.CheckConstraint(condition=models.Q(rho__gt=0, sigma__gt=0), name="release_spends_privacy"),
            models.CheckConstraint(
                condition=models.Q(state="draft", approved_at__isnull=True)
                | models.Q(state="approved", approved_at__isnull=False),
                name="release_approved_when",
            ),
            # One draft at a time: the next number, after every approved release.
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="draft"), name="release_one_draft"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.as_of.isoformat()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The services create drafts and approve them with a conditional update; nothing else writes one.
        if self._state.adding:
            if self.state != self.State.DRAFT:
                raise PermissionError("A release is created as a draft and approved by the release service.")
        elif Release.objects.filter(pk=self.pk, state=self.State.APPROVED).exists():
            raise PermissionError("An approved release is immutable: prepare a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.state == self.State.APPROVED or Release.objects.filter(pk=self.pk, state=self.State.APPROVED).exists():
            raise PermissionError("An approved release is immutable and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_approved(self) -> bool:
        return self.state == self.State.APPROVED


class ReleaseApproval(models.Model):
    """One approval of a release: by a supervisor, or from the command line (no approver)."""

    release = models.ForeignKey(Release, verbose_name=_("release"), on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("approver"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_through = models.CharField(_("approved through"), max_length=10, choices=Release.Door.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("release approval")
        verbose_name_plural = _("release approvals")
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["release", "approver"], name="release_approved_once_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.release_id}: {self.approver_id or self.approved_through}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("An approval is never changed.")
        if Release.objects.filter(pk=self.release_id, state=Release.State.APPROVED).exists():
            raise PermissionError("The release is approved already: it takes no more approvals.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if Release.objects.filter(pk=self.release_id, state=Release.State.APPROVED).exists():
            raise PermissionError("The approvals of an approved release cannot be deleted.")
        return super().delete(*args, **kwargs)
