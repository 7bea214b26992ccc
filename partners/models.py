from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    class Kind(models.TextChoices):
        NGO = "ngo", _("NGO")
        INTERMEDIARY = "intermediary", _("Intermediary")
        AUTHORITY = "authority", _("Authority")
        INTERNATIONAL = "international", _("International organisation")

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    # Names are data, not interface text: the Ukrainian one is kept beside the English one.
    name_uk = models.CharField(_("name in Ukrainian"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name in the language of the page (Ukrainian when one is recorded)."""
        return localized_name(self.name, self.name_uk)


def localized_name(name: str, name_uk: str) -> str:
    """A name recorded in English and Ukrainian, in the active language."""
    if name_uk and (get_language() or "").startswith("uk"):
        return name_uk
    return name


class Role(models.TextChoices):
    CASEWORKER = "caseworker", _("Caseworker")
    SUPERVISOR = "supervisor", _("Supervisor")
    ANALYST = "analyst", _("Analyst")
    ORG_ADMIN = "org_admin", _("Organisation admin")


class OrganisationUserManager(UserManager["User"]):
    def get_queryset(self) -> models.QuerySet[User]:
        return super().get_queryset().select_related("organisation")


class User(AbstractUser):
    """A person who signs in. Every user belongs to exactly one organisation."""

    Role = Role

    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        on_delete=models.PROTECT,
        related_name="users",
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.CASEWORKER)

    objects = OrganisationUserManager()  # type: ignore[misc]

    REQUIRED_FIELDS = ["organisation"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.SUPERVISOR


class ShareScope(models.TextChoices):
    READ = "read", _("Read")
    UPDATE = "update", _("Read and update")


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


class ApiToken(models.Model):
    """An organisation's API token. Only a hash of the secret is stored; the token is shown once."""

    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    # The public part of the token, used to find it; the secret part is only hashed.
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    digest = models.CharField(max_length=64)
    scope = models.CharField(_("scope"), max_length=10, choices=ShareScope.choices, default=ShareScope.READ)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.organisation_id})"

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
    status_change = models.ForeignKey(
        "casework.StatusChange", verbose_name=_("status change"), on_delete=models.PROTECT, related_name="+"
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


class AuthEvent(models.Model):
    """A sign-in, a failed one, a lockout, a sign-out, a second-factor step or a refusal. Never a password or a code."""

    class Kind(models.TextChoices):
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Failed sign-in")
        LOCKED_OUT = "locked_out", _("Locked out")
        SIGN_OUT = "sign_out", _("Signed out")
        OTP_VERIFIED = "otp_verified", _("Passed the second factor")
        OTP_FAILED = "otp_failed", _("Wrong second-factor code")
        OTP_SET_UP = "otp_set_up", _("Set up two-factor sign-in")
        BACKUP_CODES_MADE = "backup_codes_made", _("Made new backup codes")
        OTP_DEVICE_REMOVED = "otp_device_removed", _("Removed an authenticator app")
        PASSWORD_CHANGED = "password_changed", _("Changed their password")
        PERMISSION_DENIED = "permission_denied", _("Refused")

    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    user = models.ForeignKey(
        User, verbose_name=_("user"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # What was typed at sign-in (a staff username), kept even when it names no account.
    username = models.CharField(_("username"), max_length=150, blank=True)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # REMOTE_ADDR: a forwarded header could be written by anyone.
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    path = models.CharField(_("page"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("sign-in event")
        verbose_name_plural = _("sign-in events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["username", "at"], name="authevent_username_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.username}"
