"""Writes to organisations and users."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from casework.audit import log_access
from casework.models import AccessLog, Case
from partners.models import ApiToken, Organisation, Role, Share, ShareScope, User


def create_organisation(*, slug: str, name: str, kind: str) -> Organisation:
    errors: dict[str, list[str]] = {}
    try:
        validate_slug(slug)
    except ValidationError:
        errors["slug"] = [_("Use only lower-case letters, digits, hyphens and underscores.")]
    if slug != slug.lower():
        errors["slug"] = [_("Use only lower-case letters, digits, hyphens and underscores.")]
    if not name.strip():
        errors["name"] = [_("Give the organisation's name.")]
    if kind not in Organisation.Kind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(Organisation.Kind.values)}]
    if "slug" not in errors and Organisation.objects.filter(slug=slug).exists():
        errors["slug"] = [_("An organisation with the slug “%(slug)s” already exists.") % {"slug": slug}]
    if errors:
        raise ValidationError(errors)
    return Organisation.objects.create(slug=slug, name=name.strip(), kind=kind)


def create_user(
    *,
    username: str,
    organisation: Organisation,
    role: str,
    password: str | None,
    is_superuser: bool = False,
) -> User:
    """Create a user; without a password the account cannot sign in until one is set."""
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [_("Choose one of: %(roles)s.") % {"roles": ", ".join(Role.values)}]
    username_field = User._meta.get_field("username")
    try:
        username_field.clean(username, None)
    except ValidationError as exc:
        errors["username"] = list(exc.messages)
    if "username" not in errors and User.objects.filter(username=username).exists():
        errors["username"] = [_("A user named “%(name)s” already exists.") % {"name": username}]
    user = User(username=username, organisation=organisation, role=role)
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.is_superuser = is_superuser
        user.is_staff = is_superuser
        user.save()
    return user


# --- sharing -----------------------------------------------------------------


def _require_supervisor(user: User) -> None:
    if not (user.is_superuser or user.role == Role.SUPERVISOR):
        raise PermissionDenied(_("Only a supervisor may share cases or revoke shares."))


def share_cases(
    *,
    owner: Organisation,
    partner: Organisation,
    cases: Iterable[Case],
    scope: str,
    expires_at: datetime.datetime | None,
    shared_by: User | None,
    request: Any = None,
) -> list[Share]:
    """Share cases with a partner; an existing live share of a case is replaced by the new terms."""
    errors: dict[str, list[str]] = {}
    if shared_by is not None:
        _require_supervisor(shared_by)
    if partner.pk == owner.pk:
        errors["partner"] = [_("An organisation does not share cases with itself.")]
    if scope not in ShareScope.values:
        errors["scope"] = [_("Choose read or update.")]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires"] = [_("The expiry must be in the future.")]
    case_list = list(cases)
    if any(case.organisation_id != owner.pk for case in case_list):
        errors["cases"] = [_("Only the owning organisation's cases can be shared.")]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        # Revoke then re-create: the record of earlier terms is kept.
        Share.objects.filter(case__in=case_list, partner=partner, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=shared_by
        )
        shares = Share.objects.bulk_create(
            Share(
                case=case,
                owner=owner,
                partner=partner,
                scope=scope,
                expires_at=expires_at,
                created_by=shared_by,
            )
            for case in case_list
        )
        if shared_by is not None and case_list:
            log_access(
                action=AccessLog.Action.SHARE,
                door=AccessLog.Door.WEB,
                organisation_id=owner.pk,
                case_ids=[case.pk for case in case_list],
                user=shared_by,
                request=request,
            )
    return shares


def revoke_shares(*, owner: Organisation, shares: Iterable[Share], revoked_by: User | None, request: Any = None) -> int:
    """Revoke live shares; takes effect on the partner's very next request."""
    if revoked_by is not None:
        _require_supervisor(revoked_by)
    ids = [share.pk for share in shares if share.owner_id == owner.pk]
    with transaction.atomic():
        revoked = list(
            Share.objects.filter(pk__in=ids, revoked_at__isnull=True).select_for_update().values_list("pk", "case_id")
        )
        Share.objects.filter(pk__in=[pk for pk, _case in revoked]).update(
            revoked_at=timezone.now(), revoked_by=revoked_by
        )
        if revoked_by is not None and revoked:
            log_access(
                action=AccessLog.Action.REVOKE,
                door=AccessLog.Door.WEB,
                organisation_id=owner.pk,
                case_ids=[case_id for _pk, case_id in revoked],
                user=revoked_by,
                request=request,
            )
    return len(revoked)


# --- API tokens --------------------------------------------------------------

TOKEN_PREFIX = "rr"  # noqa: S105 (a marker, not a secret)


def _token_digest(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is enough (no key stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    *,
    organisation: Organisation,
    scope: str,
    created_by: User | None,
    name: str = "",
    expires_in_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; return it with its plain value, which is never stored and shown only once."""
    errors: dict[str, list[str]] = {}
    if created_by is not None and not (
        created_by.is_superuser or (created_by.role == Role.ORG_ADMIN and created_by.organisation_id == organisation.pk)
    ):
        raise PermissionDenied(_("Only the organisation's admin may create its API tokens."))
    if scope not in ShareScope.values:
        errors["scope"] = [_("Choose read or update.")]
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        errors["expires"] = [_("The expiry must be between 1 and 3650 days.")]
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(5)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        organisation=organisation,
        name=name.strip()[:100],
        prefix=prefix,
        digest=_token_digest(secret),
        scope=scope,
        created_by=created_by,
        expires_at=timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None,
    )
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def authenticate_token(raw: str) -> ApiToken | None:
    """The live token matching ``raw``, or None (unknown, malformed, revoked or expired)."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    _marker, prefix, secret = parts
    token = ApiToken.objects.select_related("organisation").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, _token_digest(secret)):
        return None
    if not token.is_active():
        return None
    now = timezone.now()
    # Record use at most once a minute: a write per request would serialise reads.
    if token.last_used_at is None or now - token.last_used_at > datetime.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke_token(*, token: ApiToken, revoked_by: User | None) -> None:
    if revoked_by is not None and not (
        revoked_by.is_superuser
        or (revoked_by.role == Role.ORG_ADMIN and revoked_by.organisation_id == token.organisation_id)
    ):
        raise PermissionDenied(_("Only the organisation's admin may revoke its API tokens."))
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def deactivate_users(*, users: Iterable[User], by: User) -> tuple[int, int]:
    """Deactivate accounts at once: every open session ends now. Never the acting account.

    Returns (users deactivated, sessions ended).
    """
    from partners.auth import end_sessions

    targets = [user for user in users if user.pk != by.pk]
    with transaction.atomic():
        User.objects.filter(pk__in=[user.pk for user in targets]).update(is_active=False)
    return len(targets), end_sessions(*targets)
