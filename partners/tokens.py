"""API tokens: issued to an organisation by its admin, shown once, stored hashed, checked on every request."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import secrets
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApiToken, Organisation, TokenScope, User
from accounts.permissions import can_manage_organisation
from casework.services import Actor
from partners.selectors import share_scope

TOKEN_PREFIX = "rr"  # noqa: S105 (a marker, not a secret)
_PREFIX_RE = re.compile(r"^[0-9a-f]{10}$")  # secrets.token_hex(5)


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
    if created_by is not None and not can_manage_organisation(created_by, organisation.pk):
        raise PermissionDenied(_("Only the organisation's admin may create its API tokens."))
    if scope not in TokenScope.values:
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
    if not _PREFIX_RE.fullmatch(prefix):
        return None  # not one this register issues: nothing to look up (and nothing the database refuses)
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
    if revoked_by is not None and not can_manage_organisation(revoked_by, token.organisation_id):
        raise PermissionDenied(_("Only the organisation's admin may revoke its API tokens."))
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_actor(token: ApiToken) -> Actor:
    """The actor a token writes as: its organisation, through the shares of other organisations' cases."""
    return Actor.for_token(token, grant_scope=partial(share_scope, token.organisation_id))
