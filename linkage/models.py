"""What the register keeps to find the same child in several organisations (DESIGN.md section 11).

Never a value: only keyed Bloom-filter encodings of identifying details (``CaseEncoding``), keyed
blocking keys (``BlockKey``), the pairs of cases they propose (``Candidate``, with its current
decision) and the append-only trail of decisions (``Decision``). The encodings and keys are read by
matching only: no page, export, API, log line or admin page shows them, and the admin does not list
any of these models.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework.models import AppendOnlyQuerySet


class CaseEncoding(models.Model):
    """The keyed encodings of one case's identifying details (None: the detail was not given)."""

    case = models.OneToOneField(
        "casework.Case", verbose_name=_("case"), on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    given_name = models.BinaryField(null=True)
    family_name = models.BinaryField(null=True)
    patronymic = models.BinaryField(null=True)
    birth_date = models.BinaryField(null=True)
    birth_date_swapped = models.BinaryField(null=True)
    birth_month = models.BinaryField(null=True)
    birth_place = models.BinaryField(null=True)
    encoded_at = models.DateTimeField(_("encoded at"), default=timezone.now)
    # When the case's candidates were last looked for; empty: not yet (a job or the sweep will).
    matched_at = models.DateTimeField(_("candidates looked for at"), null=True, blank=True)

    class Meta:
        verbose_name = _("case encoding")
        verbose_name_plural = _("case encodings")
        indexes = [
            models.Index(fields=["case"], name="encoding_pending", condition=models.Q(matched_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"encoding of case {self.case_id}"

    def __repr__(self) -> str:
        return f"<CaseEncoding of case {self.case_id}>"


class BlockKey(models.Model):
    """A keyed blocking key of a case: cases that share one are compared."""

    key = models.BigIntegerField(_("key"))
    case = models.ForeignKey(
        "casework.Case", verbose_name=_("case"), on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("blocking key")
        verbose_name_plural = _("blocking keys")
        constraints = [models.UniqueConstraint(fields=["case", "key"], name="blockkey_unique_per_case")]
        # The cases of a key, read from the index alone (no visit to the table's pages): a case's neighbours.
        indexes = [models.Index(fields=["key", "case"], name="blockkey_key_case")]

    def __str__(self) -> str:
        return f"blocking key of case {self.case_id}"


class Decision(models.TextChoices):
    SAME = "same", _("Same child")
    DIFFERENT = "different", _("Different children")


class Candidate(models.Model):
    """Two cases whose encodings are alike: possibly one child. ``case_a`` has the lower id.

    ``decision`` is the latest decision of the trail (``LinkDecision``), empty while undecided; a pair
    decided "same child" is a confirmed link (DESIGN.md section 4: confirmed links make children).
    """

    case_a = models.ForeignKey("casework.Case", verbose_name=_("case"), on_delete=models.CASCADE, related_name="+")
    case_b = models.ForeignKey(
        "casework.Case", verbose_name=_("other case"), on_delete=models.CASCADE, related_name="+"
    )
    # Empty: the pair was linked by hand (manage.py link_cases) without encodings to compare.
    score = models.FloatField(_("score"), null=True, blank=True)
    across_organisations = models.BooleanField(_("across organisations"))
    found_at = models.DateTimeField(_("found at"), default=timezone.now)
    scored_at = models.DateTimeField(_("scored at"), default=timezone.now)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("candidate pair")
        verbose_name_plural = _("candidate pairs")
        constraints = [
            models.UniqueConstraint(fields=["case_a", "case_b"], name="candidate_unique_pair"),
            models.CheckConstraint(condition=models.Q(case_a__lt=models.F("case_b")), name="candidate_ordered"),
        ]
        indexes = [
            # The queues: undecided pairs, best first, across organisations or within one.
            models.Index(fields=["across_organisations", "decision", "-score"], name="candidate_queue"),
            models.Index(fields=["case_b"], name="candidate_case_b"),
        ]

    def __str__(self) -> str:
        return f"{self.case_a_id} ~ {self.case_b_id}"


class LinkDecision(models.Model):
    """One decision on a pair of cases, by a reviewer or the command line. Append-only: a later decision
    on the same pair changes the pair's state, never this row.

    The trail is what the figures read (the latest decision on each pair), and it names the two cases
    itself: the application's database role may update a candidate pair, never a decision.
    """

    candidate = models.ForeignKey(
        Candidate, verbose_name=_("candidate pair"), on_delete=models.PROTECT, related_name="decisions"
    )
    case_a = models.ForeignKey(
        "casework.Case", verbose_name=_("case"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    case_b = models.ForeignKey(
        "casework.Case", verbose_name=_("other case"), on_delete=models.PROTECT, related_name="+", db_index=False
    )
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    decided_at = models.DateTimeField(_("decided at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The deciding user's organisation; empty for the command line.
    organisation = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Who decided when no user did (the command line).
    decided_via = models.CharField(_("decided through"), max_length=100, blank=True)
    score = models.FloatField(_("score at the decision"), null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("link decision")
        verbose_name_plural = _("link decisions")
        ordering = ["candidate", "decided_at", "id"]

    def __str__(self) -> str:
        return f"{self.candidate_id}: {self.decision}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Link decisions are append-only and cannot be edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError("Link decisions are append-only and cannot be deleted.")


class MatchJob(models.Model):
    """A search for the candidates of many new encodings (an import), done by a Celery task in chunks."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    organisation = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(_("cases to match"), default=0)
    done = models.PositiveIntegerField(_("cases matched"), default=0)
    found = models.PositiveIntegerField(_("candidate pairs found"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # The class of the error that stopped it, never its message (which could name data).
    error = models.CharField(_("error"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("candidate search")
        verbose_name_plural = _("candidate searches")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.pk}: {self.done}/{self.total} ({self.state})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))
