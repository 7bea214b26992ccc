"""Sharing cases with partner organisations, and revoking shares."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from accounts.permissions import can_share_cases
from casework import audit_chain
from casework.audit import log_access
from casework.models import AccessLog, Case
from partners.models import SHAREABLE_SCOPES, Share


def _require_supervisor(user: User) -> None:
    if not can_share_cases(user):
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
    if scope not in SHAREABLE_SCOPES:
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
            audit_chain.check_deferred_constraints()  # the shares checked before the access log's head is held
            log_access(
                action=AccessLog.Action.SHARE,
                door=AccessLog.Door.WEB,
                organisation_id=owner.pk,
                case_ids=[case.pk for case in case_list],
                user=shared_by,
                request=request,
            )
    return shares


class CountChanged(Exception):
    """The cases to share are no longer the ones the user saw counted: nothing was shared."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def share_counted_cases(
    *,
    owner: Organisation,
    partner: Organisation,
    cases: QuerySet[Case],
    expected_count: int,
    limit: int,
    scope: str,
    expires_at: datetime.datetime | None,
    shared_by: User | None,
    request: Any = None,
) -> list[Share]:
    """Share the cases a filter matches, provided they are still as many as the user confirmed.

    Cases added or changed since the count was shown would be shared unseen: then nothing is
    shared and ``CountChanged`` says how many match now.
    """
    chosen = list(cases[: limit + 1])
    if len(chosen) != expected_count:
        raise CountChanged(len(chosen))
    if len(chosen) > limit:
        raise ValidationError(
            {"cases": [_("Share at most %(limit)s cases at once: narrow the filter.") % {"limit": limit}]}
        )
    if not chosen:
        raise ValidationError({"cases": [_("No case matches the filter.")]})
    return share_cases(
        owner=owner,
        partner=partner,
        cases=chosen,
        scope=scope,
        expires_at=expires_at,
        shared_by=shared_by,
        request=request,
    )


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
            audit_chain.check_deferred_constraints()  # the revoked shares checked before the log's head is held
            log_access(
                action=AccessLog.Action.REVOKE,
                door=AccessLog.Door.WEB,
                organisation_id=owner.pk,
                case_ids=[case_id for _pk, case_id in revoked],
                user=revoked_by,
                request=request,
            )
    return len(revoked)
