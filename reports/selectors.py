"""Reads of the figures, scoped to what the reader may see (accounts.permissions.exact_figures_scope).

| reader                                             | exact figures              | published figures |
|----------------------------------------------------|----------------------------|-------------------|
| superuser; any role of the host organisation       | all organisations' cases   | yes               |
| any role of another organisation                   | own organisation's cases   | yes               |
| partners (API tokens), the public                  | none                       | yes               |

Each snapshot stores the exact figures of every organisation apart, and each
organisation is shown only its own. The register-wide figures reach everyone
else only as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from accounts.models import Organisation, localized_name
from accounts.permissions import FiguresScope, exact_figures_scope
from reports.figures import AGE_BANDS, SEX_KEYS, UNATTRIBUTED, Figures
from reports.models import Snapshot

if TYPE_CHECKING:
    from accounts.models import User

# The reader's scope of exact figures: accounts.permissions decides it.
Scope = FiguresScope


def exact_scope(user: User) -> Scope:
    """Which exact figures ``user`` may see: all cases, their organisation's, or none (published only)."""
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
    """The figures a reader sees, and what they cover."""

    figures: Figures
    published: bool
    scope: Scope


def figures_for(user: User, snapshot: Snapshot, *, published: bool) -> Shown:
    scope = exact_scope(user)
    assert snapshot.exact is not None and snapshot.published is not None
    if published or scope is Scope.PUBLISHED:
        return Shown(snapshot.published, True, Scope.ALL)
    if scope is Scope.ALL:
        return Shown(snapshot.exact, False, Scope.ALL)
    own = (snapshot.by_organisation or {}).get(str(user.organisation_id))
    return Shown(own if own is not None else empty_figures(snapshot.exact), False, Scope.ORGANISATION)


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
