"""An organisation's admin manages its people: invitations by e-mail, roles, deactivation.

An invitation creates the account (no usable password: it cannot sign in)
and mails a one-time link (``INVITATION_HOURS``). The link's secret is made by
the task that sends the mail and only a keyed hash is kept, so it never
passes through the broker nor sits in the database. Opening the link shows a
form; setting the password spends it (a second use, an expired or withdrawn
link, or a forged one all get the same refusal), signs the person in and
opens the second factor's set-up with an enrolment code issued for that
session: the link and the password, together, stand for the code an admin
would otherwise give in person.

Every step is a sign-in event naming who did it. Only the organisation's admin
(or a superuser) acts, never on their own account, never on another
organisation's people (accounts.permissions.can_manage_person).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from accounts import enrolment
from accounts.events import record_event
from accounts.models import AuthEvent, Invitation, Role, User
from accounts.permissions import can_manage_organisation, can_manage_person
from accounts.services import create_user, deactivate_users

logger = logging.getLogger(__name__)

SUBJECT_TEMPLATE = "registration/invitation_subject.txt"
BODY_TEMPLATE = "registration/invitation_email.txt"
_SALT = "accounts.invitations"


class InvitationRefused(Exception):
    """The link does not work: unknown, forged, used, withdrawn or expired (one answer for all)."""


def mail_configured() -> bool:
    return bool(settings.EMAIL_BACKEND != "config.mail.UnconfiguredBackend")


def _digest(token: str) -> str:
    return salted_hmac(_SALT, token, algorithm="sha256").hexdigest()


def invite(*, by: User, username: str, email: str, role: str, request: Any = None) -> Invitation:
    """Create a user of ``by``'s organisation and an invitation for them; the mail goes after commit."""
    if not can_manage_organisation(by, by.organisation_id) or by.organisation_id is None:
        raise PermissionDenied
    if not mail_configured():
        raise ValidationError(
            _("The register cannot send mail (EMAIL_URL is not set): add the user with manage.py add_user.")
        )
    errors: dict[str, list[str]] = {}
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = [_("Give a valid e-mail address.")]
    if "email" not in errors and User.objects.filter(email__iexact=email, is_active=True).exists():
        errors["email"] = [_("An active account already has this address.")]
    if role not in Role.values:
        errors["role"] = [_("Choose one of: %(roles)s.") % {"roles": ", ".join(Role.values)}]
    with transaction.atomic():
        try:
            user = create_user(
                username=(username or "").strip(), organisation=by.organisation, role=role, password=None
            )
        except ValidationError as refusal:
            for name, messages in refusal.message_dict.items():
                errors.setdefault(name, []).extend(messages)
            user = None
        if errors or user is None:
            transaction.set_rollback(True)
            raise ValidationError(errors)
        user.email = email
        user.save(update_fields=["email"])
        invitation = _new_invitation(user=user, by=by)
        record_event(AuthEvent.Kind.INVITED, request=request, user=user, by=by)
        transaction.on_commit(lambda: _queue_mail(invitation.pk, request))
    return invitation


def invite_again(*, by: User, user: User, request: Any = None) -> Invitation:
    """A new link for someone who has not set a password yet (the first expired or went astray)."""
    if not can_manage_person(by, user):
        raise PermissionDenied
    if not user.is_active or user.has_usable_password():
        raise ValidationError(_("%(user)s already has a password: they sign in as usual.") % {"user": user.username})
    if not user.email:
        raise ValidationError(_("%(user)s has no e-mail address.") % {"user": user.username})
    with transaction.atomic():
        invitation = _new_invitation(user=user, by=by)
        record_event(AuthEvent.Kind.INVITED, request=request, user=user, by=by)
        transaction.on_commit(lambda: _queue_mail(invitation.pk, request))
    return invitation


def _new_invitation(*, user: User, by: User) -> Invitation:
    now = timezone.now()
    Invitation.objects.filter(user=user, used_at__isnull=True, withdrawn_at__isnull=True).update(withdrawn_at=now)
    return Invitation.objects.create(
        user=user, issued_by=by, issued_at=now, expires_at=now + dt.timedelta(hours=settings.INVITATION_HOURS)
    )


def _queue_mail(invitation_id: int, request: Any) -> None:
    from accounts.tasks import send_invitation_mail

    try:
        send_invitation_mail.delay(
            invitation_id=invitation_id,
            domain=request.get_host() if request is not None else "",
            use_https=bool(request is not None and request.is_secure()),
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
    except Exception:
        logger.exception("Could not queue the invitation mail")


def send_invitation(*, invitation_id: int, domain: str, use_https: bool, language: str) -> bool:
    """Make the link's secret, keep its hash, mail the link. False when the mail failed (the task retries)."""
    invitation = Invitation.objects.select_related("user", "user__organisation").filter(pk=invitation_id).first()
    if invitation is None or invitation.used_at or invitation.withdrawn_at or invitation.expires_at <= timezone.now():
        return True  # nothing to send any more
    token = secrets.token_urlsafe(32)
    Invitation.objects.filter(pk=invitation.pk).update(digest=_digest(token))
    base = f"{'https' if use_https else 'http'}://{domain}" if domain else settings.REGISTER_URL
    if language not in {code for code, _name in settings.LANGUAGES}:
        language = settings.LANGUAGE_CODE
    with translation.override(language):
        context = {
            "username": invitation.user.get_username(),
            "organisation": invitation.user.organisation.display_name,
            "link": f"{base}/accounts/invitation/{invitation.pk}/{token}/",
            "hours": settings.INVITATION_HOURS,
        }
        subject = "".join(render_to_string(SUBJECT_TEMPLATE, context).splitlines())
        message = EmailMessage(subject, render_to_string(BODY_TEMPLATE, context), to=[invitation.user.email])
    try:
        message.send()
    except (smtplib.SMTPException, OSError):
        logger.warning("Invitation mail %s not sent", invitation.pk, exc_info=True)
        return False
    return True


def live_invitation(invitation_id: int, token: str) -> Invitation:
    """The invitation the link names, if it still works; else InvitationRefused (one answer for every case)."""
    if not token or len(token) > 100:
        raise InvitationRefused
    invitation = Invitation.objects.select_related("user").filter(pk=invitation_id).first()
    if (
        invitation is None
        or not invitation.is_live()
        or not hmac.compare_digest(invitation.digest, _digest(token))
        or not invitation.user.is_active
        or invitation.user.has_usable_password()
    ):
        raise InvitationRefused
    return invitation


@dataclass(frozen=True)
class Accepted:
    user: User
    enrolment_code_id: int | None


def accept(*, invitation_id: int, token: str, password: str, request: Any = None) -> Accepted:
    """Spend the link: set the password, and issue the enrolment code this session sets a factor up with."""
    with transaction.atomic():
        # Locked: two tabs posting the same link spend it once.
        locked = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
        if locked is None:
            raise InvitationRefused
        invitation = live_invitation(invitation_id, token)
        user = invitation.user
        validate_password(password, user)
        user.set_password(password)
        user.save(update_fields=["password"])
        Invitation.objects.filter(pk=invitation.pk).update(used_at=timezone.now())
        record_event(AuthEvent.Kind.INVITATION_USED, request=request, user=user)
        code_id = None
        issuer = invitation.issued_by
        if issuer is not None and can_manage_person(issuer, user):
            enrolment.issue_enrolment_code(user=user, by=issuer, request=request)
            pending = enrolment.pending_code(user)
            code_id = pending.pk if pending is not None else None
    return Accepted(user=user, enrolment_code_id=code_id)


# --- roles and deactivation -------------------------------------------------------------------


def change_role(*, by: User, user: User, role: str, request: Any = None) -> bool:
    """Give one of the organisation's people another role. Returns whether it changed."""
    if not can_manage_person(by, user):
        raise PermissionDenied
    if role not in Role.values:
        raise ValidationError({"role": [_("Choose one of: %(roles)s.") % {"roles": ", ".join(Role.values)}]})
    if user.role == role:
        return False
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(role=role)
        user.role = role
        record_event(AuthEvent.Kind.ROLE_CHANGED, request=request, user=user, by=by)
    return True


def deactivate(*, by: User, user: User, request: Any = None) -> int:
    """Deactivate one of the organisation's people: every session ends now, their links stop working.

    Returns how many sessions ended.
    """
    if not can_manage_person(by, user):
        raise PermissionDenied
    if not user.is_active:
        raise ValidationError(_("%(user)s is already deactivated.") % {"user": user.username})
    with transaction.atomic():
        Invitation.objects.filter(user=user, used_at__isnull=True, withdrawn_at__isnull=True).update(
            withdrawn_at=timezone.now()
        )
        _count, sessions = deactivate_users(users=[user], by=by)
        user.is_active = False
        record_event(AuthEvent.Kind.DEACTIVATED, request=request, user=user, by=by)
    return sessions
