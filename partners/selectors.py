"""Reads for the partner API: which cases an organisation's token may see."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import ApiToken, Organisation, User
from casework.models import Case, StatusChange
from casework.references import normalise_reference
from casework.selectors import visible_cases
from partners.models import Share, ShareScope, WebhookDelivery, WebhookEndpoint

DENSE_THRESHOLD = 2_000


def _bounded_counts(*querysets: QuerySet[Any]) -> list[int]:
    """How many rows each (sliced) queryset gives, in one round trip instead of one each (issue 16)."""
    parts: list[str] = []
    params: list[Any] = []
    for queryset in querysets:
        sql, part_params = queryset.query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) counted)")  # noqa: S608 (Django's own SQL, values as parameters)
        params.extend(part_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        row = cursor.fetchone()
    return [int(value) for value in row]


def api_cases(organisation_id: int, *, at: datetime.datetime | None = None) -> QuerySet[Case]:
    """The organisation's own cases and the cases actively shared with it, with the access each gives.

    Anything else does not exist for the caller (a 404, never counted).
    """
    at = at or timezone.now()
    live = Share.objects.active(at=at).filter(partner_id=organisation_id, case_id=OuterRef("pk"))
    shared_ids = Share.objects.active(at=at).filter(partner_id=organisation_id).values("case_id").order_by()
    own_ids = Case.objects.filter(organisation_id=organisation_id).values("id").order_by()
    # PostgreSQL cannot tell how many cases a caller sees, and the best plan depends on it:
    # for many, walk the (updated_at, id) index and keep the visible ones (a page is found
    # after a few thousand rows); for few, start from the shares and sort them. Two bounded
    # counts decide, whatever the size of the register.
    many = DENSE_THRESHOLD
    shared, own = _bounded_counts(shared_ids[:many], own_ids[:many])
    if shared + own < many:
        condition = Q(pk__in=shared_ids.union(own_ids, all=True))
    elif not own:
        # A partner: a semi-join probing the share index row by row along the case index.
        condition = Q(Exists(live))
    elif not shared:
        condition = Q(organisation_id=organisation_id)
    else:
        condition = Q(organisation_id=organisation_id) | Q(Exists(live))
    return (
        Case.objects.filter(condition)
        .annotate(
            access=Coalesce(
                Subquery(live.order_by("-scope").values("scope")[:1]),  # "update" sorts after "read"
                Value("owner"),
            )
        )
        .select_related("institution", "organisation")
    )


def share_scope(organisation_id: int, case_id: int) -> str | None:
    """What a live share of the case gives the organisation now: "update", "read", "answer" (read, and answers on
    an open list), or None (no live share)."""
    scopes = set(
        Share.objects.active().filter(case_id=case_id, partner_id=organisation_id).values_list("scope", flat=True)
    )
    for scope in (ShareScope.UPDATE, ShareScope.READ, ShareScope.ANSWER):
        if scope in scopes:
            return scope
    return None


def case_share_scopes(case_id: int) -> dict[int, str]:
    """The organisations a case is live-shared with, and what each one's shares give it now ("update", "read" or
    "answer"); one live share per case and partner (a constraint)."""
    scopes: dict[int, str] = {}
    for partner_id, scope in Share.objects.active().filter(case_id=case_id).values_list("partner_id", "scope"):
        if scopes.get(partner_id) != ShareScope.UPDATE:
            scopes[partner_id] = scope
    return scopes


def api_case_history(case: Case) -> QuerySet[StatusChange]:
    return StatusChange.objects.filter(case=case).select_related("via").order_by("occurred_on", "id")


def intermediaries() -> QuerySet[Organisation]:
    return Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).order_by("slug")


# --- the organisation admin's pages ------------------------------------------------


def organisation_tokens(organisation_id: int) -> QuerySet[ApiToken]:
    # Live tokens first, newest first; revoked ones stay listed below as the record.
    return (
        ApiToken.objects.filter(organisation_id=organisation_id)
        .select_related("created_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
    )


def organisation_webhooks(organisation_id: int) -> QuerySet[WebhookEndpoint]:
    return (
        WebhookEndpoint.objects.filter(organisation_id=organisation_id)
        .select_related("created_by")
        .order_by("-is_active", "-created_at")
    )


def organisation_deliveries(organisation_id: int) -> QuerySet[WebhookDelivery]:
    # The payload is the event itself, not needed for the log; the case's reference is all that is shown of it.
    return (
        WebhookDelivery.objects.filter(endpoint__organisation_id=organisation_id)
        .select_related("endpoint")
        .defer("payload")
        .annotate(
            case_reference=Coalesce(
                F("status_change__case__reference"), F("list_event__answer__item__case__reference")
            ),
            case_id=Coalesce(F("status_change__case_id"), F("list_event__answer__item__case_id")),
            list_id=F("list_event__case_list_id"),
        )
        .order_by("-created_at", "-id")
    )


# --- sharing -----------------------------------------------------------------------


def live_shares(case: Case) -> QuerySet[Share]:
    """The shares of a case that give a partner access now (not revoked, not expired)."""
    return Share.objects.active().filter(case=case).select_related("partner", "created_by").order_by("partner__name")


def share_partners(organisation_id: int) -> QuerySet[Organisation]:
    """Whom an organisation may share with: every other organisation, intermediaries and NGOs alike."""
    return Organisation.objects.exclude(pk=organisation_id).order_by("name", "slug")


def cases_matching(filtered: QuerySet[Case]) -> QuerySet[Case]:
    """The cases a list's filter matches, for sharing: their ids only (thousands of whole rows would be waste)."""
    return filtered.select_related(None).order_by().only("id", "organisation_id")


def cases_by_reference(user: User, references: Iterable[str]) -> list[Case]:
    """The cases ticked on a list, among those the user may see (anything else is ignored)."""
    wanted = [normalise_reference(value) for value in references]
    return list(visible_cases(user).filter(reference__in=wanted).order_by("reference"))
