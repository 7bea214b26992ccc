"""Reads about organisations and their people."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken  # type: ignore[import-untyped, unused-ignore]

from accounts.models import AuthenticatorApp, EnrolmentCode, User


def organisation_people(organisation_id: int) -> QuerySet[User]:
    """An organisation's users with the state of their second factor, in one query.

    Each carries ``has_app``, ``backup_codes_left`` and ``enrolment_expires`` (a live enrolment code's expiry).
    """
    live_code = EnrolmentCode.objects.filter(
        user=OuterRef("pk"), used_at__isnull=True, withdrawn_at__isnull=True, expires_at__gt=timezone.now()
    ).order_by("-issued_at")
    backup_codes = (
        StaticToken.objects.filter(device__user=OuterRef("pk"), device__confirmed=True)
        .order_by()
        .values("device__user")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        User.objects.filter(organisation_id=organisation_id)
        .annotate(
            has_app=Exists(AuthenticatorApp.objects.filter(user=OuterRef("pk"), confirmed=True)),
            backup_codes_left=Subquery(backup_codes),
            enrolment_expires=Subquery(live_code.values("expires_at")[:1]),
        )
        .order_by("-is_active", "username")
    )
