"""Who uses the register: organisations, their users and roles, their API tokens, and the record of sign-ins.

The tables keep the names they had when these models lived in ``partners``
(``db_table``): moving code between apps changed nothing in the database
(see migrations/0001_initial.py and the ``migrate`` command of this app).
"""

from __future__ import annotations

import datetime
from binascii import unhexlify
from typing import Any

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped, unused-ignore]


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
    # The register's host (the coalition secretariat that consolidates the figures): its users, and
    # superusers, are the only ones who see exact register-wide figures (accounts.permissions).
    is_host = models.BooleanField(
        _("hosts the register"),
        default=False,
        help_text=_("Its users see exact figures of every organisation's cases. One organisation at most."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "partners_organisation"
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_host"], condition=models.Q(is_host=True), name="one_host_organisation")
        ]

    def __str__(self) -> str:
        return self.display_name

    def clean(self) -> None:
        if self.is_host:
            other = Organisation.objects.filter(is_host=True).exclude(pk=self.pk).first()
            if other is not None:
                raise ValidationError(
                    {"is_host": _("%(other)s hosts the register already: unmark it first.") % {"other": other}}
                )

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
    # What the user chooses to receive (the account page): notices in the register, and a daily e-mail.
    notify_status_changes = models.BooleanField(_("notices of status changes by others on my cases"), default=True)
    notify_assignments = models.BooleanField(_("notices of cases and follow-ups given to me"), default=True)
    daily_digest = models.BooleanField(_("a daily e-mail with my follow-ups and notices"), default=True)
    # Kept with the user (read with every request) so that the header's bell costs no query of its own;
    # moved by casework.notices in the transaction that writes or reads the notices.
    unread_notices = models.PositiveIntegerField(_("unread notices"), default=0, editable=False)

    objects = OrganisationUserManager()  # type: ignore[misc]

    REQUIRED_FIELDS = ["organisation"]

    class Meta:
        db_table = "partners_user"
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def is_supervisor(self) -> bool:
        return self.role == Role.SUPERVISOR


class TokenScope(models.TextChoices):
    """What a token may do: read, or also report progress (``partners.ShareScope`` uses the same values)."""

    READ = "read", _("Read")
    UPDATE = "update", _("Read and update")


class ApiToken(models.Model):
    """An organisation's API token. Only a hash of the secret is stored; the token is shown once."""

    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    # The public part of the token, used to find it; the secret part is only hashed.
    prefix = models.CharField(_("prefix"), max_length=12, unique=True)
    digest = models.CharField(max_length=64)
    scope = models.CharField(_("scope"), max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        User, verbose_name=_("created by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        db_table = "partners_apitoken"
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.organisation_id})"

    def is_active(self, at: datetime.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class AuthEvent(models.Model):
    """A sign-in, a failed one, a lockout, a sign-out, a second-factor step, a password reset or a refusal.

    Never a password, a code, a reset link or an e-mail address typed by someone.
    """

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
        ENROLMENT_ISSUED = "enrolment_issued", _("Was given an enrolment code")
        ENROLMENT_FAILED = "enrolment_failed", _("Wrong enrolment code")
        FACTOR_RESET = "factor_reset", _("Had their second factor reset")
        RESET_REQUESTED = "reset_requested", _("Asked for a password reset")
        RESET_THROTTLED = "reset_throttled", _("Too many password reset requests")
        PASSWORD_RESET = "password_reset", _("Reset their password by e-mail")
        INVITED = "invited", _("Was invited")
        INVITATION_USED = "invitation_used", _("Accepted an invitation")
        ROLE_CHANGED = "role_changed", _("Had their role changed")
        DEACTIVATED = "deactivated", _("Was deactivated")

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
    # accounts.requests.client_address: REMOTE_ADDR, or the client a trusted proxy names; never a forged header.
    ip_address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    path = models.CharField(_("page"), max_length=200, blank=True)
    # Who did it to the user, when that is someone else (an admin who reset a second factor).
    by = models.ForeignKey(
        User, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "partners_authevent"
        verbose_name = _("sign-in event")
        verbose_name_plural = _("sign-in events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["username", "at"], name="authevent_username_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.username}"


# --- the second factor's devices, with their secrets sealed (accounts.sealing) ---------------


class AuthenticatorApp(TOTPDevice):  # type: ignore[misc]
    """django-otp's authenticator app (TOTP), its key encrypted at rest. Every app is made through here."""

    class Meta:
        proxy = True
        verbose_name = _("authenticator app")
        verbose_name_plural = _("authenticator apps")

    @property
    def bin_key(self) -> bytes:
        from accounts import sealing

        # A key that is not sealed was not written by the register: it opens nothing.
        return sealing.unseal(self.key)

    def verify_token(self, token: Any) -> bool:
        from accounts import sealing

        try:
            self.bin_key  # noqa: B018 (fails on a key that no configured key opens)
        except sealing.SealError:
            return False
        return bool(super().verify_token(token))

    def save(self, *args: Any, **kwargs: Any) -> None:
        from accounts import sealing

        key = str(self.key)  # type: ignore[has-type]
        if not sealing.is_sealed(key):
            self.key = sealing.seal(unhexlify(key.encode()))
        super().save(*args, **kwargs)


class BackupCodes(StaticDevice):  # type: ignore[misc]
    """django-otp's one-time backup codes, stored hashed (keyed): the codes themselves are shown once."""

    class Meta:
        proxy = True
        verbose_name = _("backup codes")
        verbose_name_plural = _("backup codes")

    def verify_token(self, token: Any) -> bool:
        from accounts import sealing

        verify_allowed, _details = self.verify_is_allowed()
        if not verify_allowed:
            return False
        match = self.token_set.filter(token__in=sealing.code_digests(str(token), sealing.BACKUP_CODES)).first()
        if match is None:
            self.throttle_increment()
            return False
        match.delete()
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True


class EnrolmentCode(models.Model):
    """A one-time code that lets a user set up a second factor for the first time (or after a reset).

    Issued by the organisation's admin or a superuser (accounts.enrolment); only a keyed hash is kept.
    """

    user = models.ForeignKey(User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=16)
    issued_by = models.ForeignKey(
        User, verbose_name=_("issued by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        verbose_name = _("enrolment code")
        verbose_name_plural = _("enrolment codes")
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.issued_at:%Y-%m-%d %H:%M}"

    def is_live(self, at: datetime.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.used_at is None and self.withdrawn_at is None and self.expires_at > at


class Invitation(models.Model):
    """A one-time link, sent by e-mail, with which an invited user sets a password and then a second factor.

    Issued by the organisation's admin (accounts.invitations); only a keyed hash of the link's secret is
    kept, the secret itself is made by the task that sends the mail. Works once, until ``expires_at``.
    """

    user = models.ForeignKey(User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64, blank=True)
    issued_by = models.ForeignKey(
        User, verbose_name=_("issued by"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.issued_at:%Y-%m-%d %H:%M}"

    def is_live(self, at: datetime.datetime | None = None) -> bool:
        at = at or timezone.now()
        return bool(self.digest) and self.used_at is None and self.withdrawn_at is None and self.expires_at > at
