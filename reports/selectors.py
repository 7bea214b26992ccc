"""Reads of the figures, scoped to what the reader may see (accounts.permissions.exact_figures_scope).

| reader                                             | exact figures (snapshots)  | releases |
|----------------------------------------------------|----------------------------|----------|
| superuser; any role of the host organisation       | all organisations' cases   | yes      |
| any role of another organisation                   | own organisation's cases   | yes      |
| partners (API tokens), the public                  | none                       | yes      |

Each snapshot stores the exact figures of every organisation apart, and each
organisation is shown only its own. Snapshots are never published: the
register-wide figures reach everyone else only as releases (approved ones;
drafts only to those who handle them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.db.models.fields.json import KT

from accounts.models import Organisation, localized_name
from accounts.permissions import FiguresScope, can_see_release_drafts, exact_figures_scope
from reports.figures import AGE_BANDS, SEX_KEYS, UNATTRIBUTED, Figures
from reports.models import Release, Snapshot

if TYPE_CHECKING:
    from accounts.models import User

# The reader's scope of exact figures: accounts.permissions decides it.
Scope = FiguresScope


def exact_scope(user: User) -> Scope:
    """Which exact figures ``user`` may see: all cases, their organisation's, or none (releases only)."""
    return exact_figures_scope(user)


def done_snapshots() -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(state=Snapshot.State.DONE)


def latest_snapshot() -> Snapshot | None:
    """The newest figures: the done snapshot with the latest as-of date (the latest computed among equals)."""
    return done_snapshots().order_by("-as_of", "-finished_at", "-id").first()


def snapshot_to_show(snapshot_id: int | None) -> Snapshot | None:
    if snapshot_id is None:
        return latest_snapshot()
    return done_snapshots().filter(pk=snapshot_id).first()


def recent_snapshots(limit: int = 10) -> list[Snapshot]:
    return list(Snapshot.objects.order_by("-requested_at", "-id")[:limit])


@dataclass(frozen=True)
class Shown:
    """The exact figures a reader sees, and what they cover."""

    figures: Figures
    scope: Scope


def figures_for(user: User, snapshot: Snapshot) -> Shown | None:
    """The exact figures of ``snapshot`` that ``user`` may see; None for a reader of releases only."""
    scope = exact_scope(user)
    assert snapshot.exact is not None
    if scope is Scope.PUBLISHED:
        return None
    if scope is Scope.ALL:
        return Shown(snapshot.exact, Scope.ALL)
    own = (snapshot.by_organisation or {}).get(str(user.organisation_id))
    return Shown(own if own is not None else empty_figures(snapshot.exact), Scope.ORGANISATION)


def empty_figures(like: Figures) -> Figures:
    """Figures with no case, shaped like ``like`` (an organisation with no case on that date)."""
    zero = {"reported": 0, "repatriated": 0}
    return {
        "as_of": like["as_of"],
        "published": False,
        "min_cell": None,
        "totals": {"reported": 0, "repatriated": 0, "outstanding": 0},
        "records": {"reported": 0, "repatriated": 0},
        "by_oblast": {},
        "by_sex": {key: dict(zero) for key in SEX_KEYS},
        "by_age_band": {key: dict(zero) for key in AGE_BANDS},
        "by_via": dict.fromkeys(like["by_via"], 0),
        "monthly": [],
        "median_days_to_return": None,
    }


def intermediary_names(slugs: Any) -> dict[str, str]:
    names = {
        slug: localized_name(name, name_uk)
        for slug, name, name_uk in Organisation.objects.filter(slug__in=list(slugs)).values_list(
            "slug", "name", "name_uk"
        )
    }
    names.pop(UNATTRIBUTED, None)
    return names


# --- releases ---------------------------------------------------------------------------------
#
# What leaves the register: approved releases only, for everyone (signed in or not, partners, the API).
# Drafts are seen only by those who may prepare or approve releases.

# The largest number a release can have (the column is a 32-bit integer): a larger one is no release.
_MAX_NUMBER = 2**31 - 1


def published_releases() -> QuerySet[Release]:
    """Every approved release, newest first."""
    return Release.objects.filter(state=Release.State.APPROVED).order_by("-number")


def release_by_number(number: int) -> Release | None:
    """The approved release with this number, or None (also for a number no release can have)."""
    if not 1 <= number <= _MAX_NUMBER:
        return None
    return published_releases().filter(number=number).first()


def latest_release() -> Release | None:
    return published_releases().first()


def releases_for(user: User) -> QuerySet[Release]:
    """The releases ``user`` may see: every approved one, and the draft to those who handle drafts."""
    releases = Release.objects.all() if can_see_release_drafts(user) else published_releases()
    return releases.select_related("prepared_by").order_by("-number")


def release_for(user: User, number: int) -> Release | None:
    if not 1 <= number <= _MAX_NUMBER:
        return None
    return releases_for(user).prefetch_related("approvals").filter(number=number).first()


def draft_release() -> Release | None:
    return Release.objects.filter(state=Release.State.DRAFT).first()


@dataclass(frozen=True)
class Budget:
    """The privacy-loss budget around a release date: what the releases of the 365 days up to it spent."""

    as_of: dt.date
    spent: float  # by the approved releases dated in the window (the one asked about excluded)
    needed: float  # by the release asked about
    limit: float
    next_date: dt.date  # the first date on which ``needed`` fits, if it does not on ``as_of``

    @property
    def fits(self) -> bool:
        # Within a rounding error: 14 releases of ρ/14 each make ρ.
        return self.spent + self.needed <= self.limit * (1 + 1e-9)


def next_release_date(*, rho: float) -> dt.date | None:
    """The earliest date of the next release (the spacing and the budget), or None before the first."""
    last = latest_release()
    if last is None:
        return None
    earliest = last.as_of + dt.timedelta(days=settings.FIGURES_RELEASE_MIN_DAYS)
    budget = release_budget(earliest, rho=rho)
    return earliest if budget.fits else max(earliest, budget.next_date)


def release_budget(as_of: dt.date, *, rho: float, excluding: int | None = None) -> Budget:
    """How much of the budget the approved releases dated in the 365 days up to ``as_of`` have spent."""
    limit = float(settings.FIGURES_PRIVACY_RHO_PER_YEAR)
    window = (
        published_releases()
        .exclude(pk=excluding or 0)
        .filter(as_of__gt=as_of - dt.timedelta(days=365), as_of__lte=as_of)
    )
    spent = float(window.aggregate(spent=Sum("rho"))["spent"] or 0.0)
    next_date = as_of
    left = spent
    # The oldest releases leave the window first: the day after the one that makes room is 365 days on.
    for day, release_rho in window.order_by("as_of").values_list("as_of", "rho"):
        if left + rho <= limit * (1 + 1e-9):
            break
        left -= release_rho
        next_date = day + dt.timedelta(days=365)
    return Budget(as_of=as_of, spent=spent, needed=rho, limit=limit, next_date=next_date)


@dataclass(frozen=True)
class ReleaseRow:
    number: int
    as_of: dt.date
    approved_at: dt.datetime | None
    min_cell: int
    reported: int | None
    repatriated: int | None


def release_list() -> list[ReleaseRow]:
    """Every approved release, newest first, with its headline totals: one query, never the whole figures."""
    rows = (
        published_releases()
        .annotate(reported=KT("figures__totals__reported"), repatriated=KT("figures__totals__repatriated"))
        .values_list("number", "as_of", "approved_at", "min_cell", "reported", "repatriated")
    )
    return [
        ReleaseRow(number, as_of, approved_at, min_cell, _int_or_none(reported), _int_or_none(repatriated))
        for number, as_of, approved_at, min_cell, reported, repatriated in rows
    ]


def _int_or_none(value: str | None) -> int | None:
    return None if value in (None, "", "null") else int(value)
