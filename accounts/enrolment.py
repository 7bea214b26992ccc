"""Enrolment codes: a first second factor (or a new one after a reset) is set up only with one of these.

An organisation's admin or a superuser issues a code to a user (the register's
pages, the admin, or ``manage.py issue_enrolment_code``); it is shown once,
kept only as a keyed hash (accounts.sealing), works once, and expires after
``ENROLMENT_CODE_HOURS``. Issuing a new code withdraws the earlier one. A reset
removes the user's authenticator apps and backup codes (their sessions end)
and issues a code in the same step. Each step is an AuthEvent naming who did it.

A password alone never enrols a factor: whoever holds a stolen password and no
code cannot turn it into a full sign-in.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import sealing
from accounts.events import record_event
from accounts.models import AuthenticatorApp, AuthEvent, BackupCodes, EnrolmentCode, User
from accounts.permissions import can_manage_second_factor
from accounts.two_factor import has_second_factor

# Letters and digits that cannot be mistaken for one another when read aloud or copied by hand.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 12  # about 59 bits


@dataclass(frozen=True)
class IssuedCode:
    user: User
    code: str  # shown once, grouped for reading
    expires_at: dt.datetime
    reset: bool


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _index in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def issue_enrolment_code(*, user: User, by: User | None, request: Any = None, reset: bool = False) -> IssuedCode:
    """A new enrolment code for ``user``; with ``reset``, their second factor is removed first.

    ``by`` is the admin who asks (checked: accounts.permissions.can_manage_second_factor), or None for
    an operator at the command line.
    """
    if by is not None and not can_manage_second_factor(by, user):
        raise PermissionDenied
    if not user.is_active:
        raise ValidationError(_("%(user)s is deactivated.") % {"user": user.get_username()})
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        if reset:
            # Deleting the devices ends the user's sessions (accounts.sessions).
            AuthenticatorApp.objects.filter(user=user).delete()
            BackupCodes.objects.filter(user=user).delete()
            record_event(AuthEvent.Kind.FACTOR_RESET, request=request, user=user, by=by)
        elif has_second_factor(user):
            raise ValidationError(
                _("%(user)s already has a second factor. Reset it to issue an enrolment code.")
                % {"user": user.get_username()}
            )
        EnrolmentCode.objects.filter(user=user, used_at__isnull=True, withdrawn_at__isnull=True).update(
            withdrawn_at=now
        )
        code = _new_code()
        expires_at = now + dt.timedelta(hours=settings.ENROLMENT_CODE_HOURS)
        EnrolmentCode.objects.create(
            user=user,
            digest=sealing.code_digest(code, sealing.ENROLMENT_CODES),
            issued_by=by,
            issued_at=now,
            expires_at=expires_at,
        )
        record_event(AuthEvent.Kind.ENROLMENT_ISSUED, request=request, user=user, by=by)
    return IssuedCode(user=user, code=code, expires_at=expires_at, reset=reset)


def live_code(user: Any, typed: str) -> EnrolmentCode | None:
    """The user's live enrolment code that ``typed`` is, if any."""
    if not typed or len(typed) > 64:
        return None
    return (
        EnrolmentCode.objects.filter(
            user=user,
            used_at__isnull=True,
            withdrawn_at__isnull=True,
            expires_at__gt=timezone.now(),
            digest__in=sealing.code_digests(typed, sealing.ENROLMENT_CODES),
        )
        .order_by("-issued_at")
        .first()
    )


def still_live(user: Any, code_id: int) -> bool:
    return EnrolmentCode.objects.filter(
        pk=code_id, user=user, used_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def use_code(user: Any, code_id: int) -> bool:
    """Spend the code (inside the transaction that confirms the new factor). False if it was spent or withdrawn."""
    return (
        EnrolmentCode.objects.filter(
            pk=code_id, user=user, used_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
        ).update(used_at=timezone.now())
        == 1
    )


def pending_code(user: Any) -> EnrolmentCode | None:
    """The user's live code, if one was issued (for the admin's page: issued, not yet used)."""
    return (
        EnrolmentCode.objects.filter(
            user=user, used_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-issued_at")
        .first()
    )
