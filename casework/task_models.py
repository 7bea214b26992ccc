"""Follow-ups: tasks on cases with a due date and an assignee, and the rules that make them (DESIGN.md section 13).

Kept apart from casework.models (which is long enough); casework.models imports
these, so Django finds them. The rules are applied by casework.followups,
called by the status service in the transaction of the change.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskKind(models.TextChoices):
    VERIFY_REPORT = "verify_report", _("Verify the report")
    CHECK_AFTER_RETURN = "check_after_return", _("Check on the child after the return")
    REVIEW_IDLE = "review_idle", _("Review a case with no change")
    OTHER = "other", _("Other follow-up")


# The kinds a rule may make; "other" is for tasks made by hand.
RULE_KINDS: tuple[str, ...] = (TaskKind.VERIFY_REPORT, TaskKind.CHECK_AFTER_RETURN, TaskKind.REVIEW_IDLE)


class FollowUpRule(models.Model):
    """One of an organisation's rules: a kind of task and after how many days it falls due.

    verify_report: days after the report; check_after_return: days after the return (one rule per
    check-in); review_idle: days without a status change.
    """

    organisation = models.ForeignKey(
        "accounts.Organisation",
        verbose_name=_("organisation"),
        on_delete=models.CASCADE,
        related_name="follow_up_rules",
    )
    kind = models.CharField(_("kind"), max_length=20, choices=[(k, TaskKind(k).label) for k in RULE_KINDS])
    days = models.PositiveSmallIntegerField(_("days"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("follow-up rule")
        verbose_name_plural = _("follow-up rules")
        ordering = ["organisation", "kind", "days"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "kind", "days"], name="followuprule_unique"),
            models.CheckConstraint(condition=models.Q(days__gte=1, days__lte=3650), name="followuprule_days_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.days})"


class Task(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        # Closed without being done: the move that called for it was corrected away, or the case closed.
        CANCELLED = "cancelled", _("No longer needed")

    case = models.ForeignKey("casework.Case", verbose_name=_("case"), on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(_("kind"), max_length=20, choices=TaskKind.choices)
    due_on = models.DateField(_("due on"))
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned to"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    note = models.TextField(_("note"), blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    done_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("closed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Made by a rule (which one), or by hand (created_by).
    rule = models.ForeignKey(
        FollowUpRule, verbose_name=_("rule"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_on", "id"]
        indexes = [
            # "My work": a user's open tasks by due date.
            models.Index(
                fields=["assigned_to", "due_on"], name="task_open_assignee_due", condition=models.Q(state="open")
            ),
            models.Index(fields=["case", "state"], name="task_case_state"),
        ]
        constraints = [
            # The daily review never piles up a second open review on a case.
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(state="open", kind="review_idle"),
                name="task_one_open_review_per_case",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.due_on}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    @property
    def by_rule(self) -> bool:
        return self.created_by_id is None


class Notice(models.Model):
    """A notice to one user in the register (the bell): something happened to their cases or their work.

    Holds a kind, a case (or a count of cases) and who did it: the page words it; never free text.
    """

    class Kind(models.TextChoices):
        STATUS_CHANGED = "status_changed", _("A status changed on your case")
        TASK_GIVEN = "task_given", _("A follow-up was given to you")
        CASES_GIVEN = "cases_given", _("Cases were given to you")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    case = models.ForeignKey(
        "casework.Case", verbose_name=_("case"), on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    count = models.PositiveIntegerField(_("count"), default=1)
    # For a status change: the status the case moved to.
    status = models.CharField(_("status"), max_length=20, blank=True)
    # Who did it: a user's name, or the partner's token ("API token abc123").
    by = models.CharField(_("by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="notice_user_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.created_at:%Y-%m-%d}"

    @property
    def status_label(self) -> str:
        from casework.models import Status

        return str(Status(self.status).label) if self.status in Status.values else self.status


class SavedFilter(models.Model):
    """A case list's filter and sort, saved under a name by one user (for that user only)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="saved_filters"
    )
    name = models.CharField(_("name"), max_length=80)
    # The list's query string (filters and sort, never the page), checked by the list's own filter form.
    query = models.CharField(_("filter"), max_length=1000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="savedfilter_unique_name_per_user")]

    def __str__(self) -> str:
        return self.name
