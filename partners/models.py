"""What partner organisations get: shares of cases, webhooks, and the record of API writes already answered."""

from __future__ import annotations

import datetime
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import ApiToken, Organisation, User
from casework.models import AppendOnlyQuerySet


class ShareScope(models.TextChoices):
    READ = "read", _("Read")
    UPDATE = "update", _("Read and update")
    # Given only by sending a list to an intermediary: read the case and record answers on the list.
    ANSWER = "answer", _("Read and answer a list")


# The scopes a supervisor may give by sharing; ``answer`` comes only with a list.
SHAREABLE_SCOPES: tuple[str, ...] = (ShareScope.READ, ShareScope.UPDATE)


class ShareQuerySet(models.QuerySet["Share"]):
    def active(self, *, at: datetime.datetime | None = None) -> ShareQuerySet:
        at = at or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=at)
        )


class Share(models.Model):
    """Gives a partner organisation access to one case of an owning organisation."""

    case = models.ForeignKey("casework.Case", verbose_name=_("case"), on_delete=models.CASCADE, related_name="shares")
    owner = models.ForeignKey(
        Organisation, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="shares_given"
    )
    partner = models.ForeignKey(
        Organisation, verbose_name=_("partner"), on_delete=models.PROTECT, related_name="shares_received"
    )
    scope = models.CharField(_("scope"), max_length=10, choices=ShareScope.choices, default=ShareScope.READ)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("shared at"), auto_now_add=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("shared by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, verbose_name=_("revoked by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = ShareQuerySet.as_manager()

    class Meta:
        verbose_name = _("share")
        verbose_name_plural = _("shares")
        constraints = [
            # At most one live share per case and partner; revoked ones stay as the record.
            models.UniqueConstraint(
                fields=["case", "partner"],
                condition=models.Q(revoked_at__isnull=True),
                name="share_one_live_per_case_partner",
            ),
        ]
        # Covers the API's "cases shared with me" set: an index-only scan when the table is vacuumed.
        indexes = [
            models.Index(fields=["partner", "revoked_at", "case"], name="share_partner_live", include=["expires_at"])
        ]

    def __str__(self) -> str:
        return f"{self.case_id} → {self.partner_id} ({self.scope})"

    def is_active(self, at: datetime.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class WebhookEndpoint(models.Model):
    """Where an organisation receives signed events for status changes of cases shared with it."""

    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="webhooks"
    )
    url = models.URLField(_("URL"), max_length=500)
    # The signing secret is derived from the server key and this salt, so it is never stored.
    salt = models.CharField(max_length=32, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(
        WebhookEndpoint, verbose_name=_("webhook"), on_delete=models.CASCADE, related_name="deliveries"
    )
    # What the event is about: a status change of a shared case, or an event of a list sent to the receiver.
    status_change = models.ForeignKey(
        "casework.StatusChange",
        verbose_name=_("status change"),
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    list_event = models.ForeignKey(
        "ListEvent", verbose_name=_("list event"), on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    event_id = models.UUIDField(_("event id"), unique=True)
    payload = models.JSONField(_("payload"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(_("last response status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "status_change"], name="delivery_once_per_change"),
            models.UniqueConstraint(fields=["endpoint", "list_event"], name="delivery_once_per_list_event"),
            models.CheckConstraint(
                condition=models.Q(status_change__isnull=True, list_event__isnull=False)
                | models.Q(status_change__isnull=False, list_event__isnull=True),
                name="delivery_of_one_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.state})"


class IdempotencyRecord(models.Model):
    """The first successful response to a write with a given Idempotency-Key, replayed on retries."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "key"], name="idempotency_key_per_organisation"),
        ]

    def __str__(self) -> str:
        return self.key


# --- lists to intermediaries (DESIGN.md section 12) ----------------------------------


class ListState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENT = "sent", _("Sent")
    CLOSED = "closed", _("Closed")


class AnswerKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    UNDER_VERIFICATION = "under_verification", _("Under verification")
    LOCATED = "located", _("Located")
    RETURN_PREPARING = "return_preparing", _("Return being prepared")
    RETURNED = "returned", _("Returned")
    NOT_FOUND = "not_found", _("Not found")
    REFUSED = "refused", _("Refused")
    NO_ANSWER = "no_answer", _("No answer yet")


class CaseList(models.Model):
    """A list of children an organisation sends an intermediary, who answers child by child."""

    organisation = models.ForeignKey(
        Organisation, verbose_name=_("sending organisation"), on_delete=models.PROTECT, related_name="lists_sent"
    )
    intermediary = models.ForeignKey(
        Organisation, verbose_name=_("intermediary"), on_delete=models.PROTECT, related_name="lists_received"
    )
    state = models.CharField(_("state"), max_length=10, choices=ListState.choices, default=ListState.DRAFT)
    sent_on = models.DateField(_("sent on"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sent_by = models.ForeignKey(
        User, verbose_name=_("sent by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        User, verbose_name=_("closed by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The sending organisation's unread marker: the latest answer the intermediary gave through the API,
    # and when someone of the sending organisation last opened the list.
    last_partner_answer_at = models.DateTimeField(_("latest answer from the intermediary"), null=True, blank=True)
    answers_seen_at = models.DateTimeField(_("answers seen at"), null=True, blank=True)

    class Meta:
        verbose_name = _("list to an intermediary")
        verbose_name_plural = _("lists to intermediaries")
        ordering = ["-sent_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state="draft") | models.Q(sent_on__isnull=False), name="list_sent_has_date"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} → {self.intermediary_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state == ListState.SENT

    @property
    def has_unread_answers(self) -> bool:
        return self.last_partner_answer_at is not None and (
            self.answers_seen_at is None or self.answers_seen_at < self.last_partner_answer_at
        )


class ListItem(models.Model):
    """A case on a list; fixed once the list is sent. Its latest answer is kept here for counts and filters."""

    case_list = models.ForeignKey(CaseList, verbose_name=_("list"), on_delete=models.CASCADE, related_name="items")
    case = models.ForeignKey("casework.Case", verbose_name=_("case"), on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)
    latest_answer = models.CharField(_("latest answer"), max_length=20, choices=AnswerKind.choices, blank=True)
    latest_answered_on = models.DateField(_("latest answer on"), null=True, blank=True)

    class Meta:
        verbose_name = _("list item")
        verbose_name_plural = _("list items")
        constraints = [models.UniqueConstraint(fields=["case_list", "case"], name="list_item_once_per_case")]
        indexes = [models.Index(fields=["case", "case_list"], name="list_item_case")]

    def __str__(self) -> str:
        return f"{self.case_list_id}/{self.case_id}"


class ListAnswer(models.Model):
    """One answer about one item, as a dated trail: written once, never edited or deleted."""

    item = models.ForeignKey(ListItem, verbose_name=_("list item"), on_delete=models.PROTECT, related_name="answers")
    answer = models.CharField(_("answer"), max_length=20, choices=AnswerKind.choices)
    answered_on = models.DateField(_("answered on"))
    note = models.TextField(_("note"), blank=True)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        User, verbose_name=_("recorded by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_by_token = models.ForeignKey(
        ApiToken,
        verbose_name=_("recorded by token"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The status change the answer caused, if any (located, returned).
    status_change = models.ForeignKey(
        "casework.StatusChange",
        verbose_name=_("status change"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        ordering = ["answered_on", "id"]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.answer} ({self.answered_on})"


class ListEvent(models.Model):
    """The outbox of list events for the intermediary's webhooks, written in the transaction of the change."""

    class Kind(models.TextChoices):
        SENT = "list.sent", _("List sent")
        ANSWER = "list.answer_recorded", _("Answer recorded")
        CLOSED = "list.closed", _("List closed")

    case_list = models.ForeignKey(CaseList, verbose_name=_("list"), on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    answer = models.ForeignKey(
        ListAnswer, verbose_name=_("answer"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("list event")
        verbose_name_plural = _("list events")
        indexes = [
            models.Index(fields=["id"], name="list_event_unprocessed", condition=models.Q(processed_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.case_list_id}"


class AnswerSheetJob(models.Model):
    """An answered sheet uploaded back: checked by a task (nothing written), confirmed, then applied by another.

    The answers found in the file are kept here until the job ends (line, reference, answer, date, note:
    references and answers only, never a name); they are deleted when the job is applied, fails, is
    cancelled, and with the job itself a day later (``partners.tasks.sweep_answer_sheets``).
    """

    class State(models.TextChoices):
        CHECKING = "checking", _("Being checked")
        INVALID = "invalid", _("Problems found")
        READY = "ready", _("Ready to record")
        APPLYING = "applying", _("Recording")
        DONE = "done", _("Recorded")
        FAILED = "failed", pgettext_lazy("answered sheet", "Not recorded")
        CANCELLED = "cancelled", _("Cancelled")

    # What the page's progress bar waits for.
    WORKING_STATES = frozenset({State.CHECKING, State.APPLYING})
    # What may still be cancelled (nothing is being written).
    CANCELLABLE_STATES = frozenset({State.CHECKING, State.INVALID, State.READY})

    # Not guessable: it names the job in its URLs.
    key = models.UUIDField(_("key"), default=uuid.uuid4, unique=True, editable=False)
    case_list = models.ForeignKey(
        CaseList, verbose_name=_("list"), on_delete=models.CASCADE, related_name="answer_sheets"
    )
    uploaded_by = models.ForeignKey(User, verbose_name=_("uploaded by"), on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(_("file"), max_length=120)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.CHECKING)
    # [[line, reference, answer, "YYYY-MM-DD", note], ...]: emptied once the job no longer needs them.
    answers = models.JSONField(default=list, blank=True)
    # Every problem as "file:line: column: reason", one a line.
    problems = models.TextField(blank=True)
    problem_count = models.PositiveIntegerField(default=0)
    # The progress of the check or of the recording (answers done out of total).
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # What the check found: the answers to record, how many move a case, how many of each kind, and the
    # answers the trail already has (not recorded again).
    answer_count = models.PositiveIntegerField(default=0)
    move_count = models.PositiveIntegerField(default=0)
    kind_counts = models.JSONField(default=dict, blank=True)
    known_count = models.PositiveIntegerField(default=0)
    # What the recording did.
    recorded_count = models.PositiveIntegerField(default=0)
    moved_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        User, verbose_name=_("confirmed by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("answered sheet")
        verbose_name_plural = _("answered sheets")
        indexes = [models.Index(fields=["created_at"], name="answer_sheet_created")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_state_display()})"

    @property
    def percent(self) -> int:
        return min(100, self.done * 100 // self.total) if self.total else 0

    @property
    def working(self) -> bool:
        return self.state in self.WORKING_STATES
