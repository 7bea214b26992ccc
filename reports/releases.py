"""Writes of the releases: prepare, approve, discard, and the command line's door (DESIGN section 10).

A release is prepared as a draft: the register is read in one transaction
into a snapshot (exact, internal), with what the release protects
(``reports.figures.compute_release_series``), and ``reports.protection``
turns it into the figures to publish. It is approved by
FIGURES_RELEASE_APPROVERS distinct supervisors (with 2, neither may be the
preparer), or at once from the command line; then it is published and never
changes (``reports.models``).

Every release is checked, when prepared and again when approved:

* its date is not in the future, after the first month of the released series;
* it comes after every approved release, at least FIGURES_RELEASE_MIN_DAYS later;
* the ρ it spends, with the ρ of the approved releases dated in the 365 days
  up to its date, stays within FIGURES_PRIVACY_RHO_PER_YEAR;
* only one draft at a time (the next number).

Bad input of any kind is a ValidationError naming the field, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.models import Organisation
from casework.models import Oblast
from casework.screening import screen_text
from reports import protection, selectors
from reports.figures import AGE_BANDS, SEX_KEYS, UNATTRIBUTED
from reports.models import Release, ReleaseApproval, Snapshot
from reports.services import NotPermitted, compute_snapshot, failure_reason, mark_failed

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

NOTE_MAX_LENGTH = 2000
# Serialises the preparation of releases on PostgreSQL (any constant: the register takes no other advisory lock).
_ADVISORY_LOCK = 0x52454C45  # "RELE"


def release_rho() -> float:
    """The ρ each release spends: the yearly budget shared by the most releases any 365 days can hold."""
    return protection.rho_per_release(
        rho_per_year=settings.FIGURES_PRIVACY_RHO_PER_YEAR, min_days=settings.FIGURES_RELEASE_MIN_DAYS
    )


def _date(day: dt.date) -> str:
    return formats.date_format(day, "DATE_FORMAT")


def _refuse(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def check_release_date(as_of: dt.date, *, rho: float, excluding: int | None = None) -> None:
    """Refuse a release as of ``as_of`` spending ``rho`` (ValidationError on ``as_of``), or return."""
    if as_of > timezone.localdate():
        raise _refuse("as_of", _("The date is in the future: a release can only describe the past."))
    start = settings.FIGURES_RELEASE_SERIES_START
    if as_of.strftime("%Y-%m") < start:
        raise _refuse("as_of", _("Releases start in %(month)s: choose a later date.") % {"month": start})
    last = selectors.published_releases().exclude(pk=excluding or 0).first()
    if last is not None:
        earliest = last.as_of + dt.timedelta(days=settings.FIGURES_RELEASE_MIN_DAYS)
        if as_of < earliest:
            raise _refuse(
                "as_of",
                _(
                    "Release %(number)s is as of %(date)s; releases are at least %(days)s days apart, "
                    "so the next one can be as of %(earliest)s or later."
                )
                % {
                    "number": last.number,
                    "date": _date(last.as_of),
                    "days": settings.FIGURES_RELEASE_MIN_DAYS,
                    "earliest": _date(earliest),
                },
            )
    budget = selectors.release_budget(as_of, rho=rho, excluding=excluding)
    if not budget.fits:
        raise _refuse(
            "as_of",
            _(
                "The privacy-loss budget is spent: the releases of the 365 days up to %(date)s have spent "
                "ρ = %(spent)s of %(limit)s, and this one needs %(needed)s. The next release can be as of "
                "%(next)s or later."
            )
            % {
                "date": _date(as_of),
                "spent": f"{budget.spent:.3f}",
                "limit": f"{budget.limit:g}",
                "needed": f"{rho:.3f}",
                "next": _date(budget.next_date),
            },
        )


def _check_no_draft() -> None:
    draft = Release.objects.filter(state=Release.State.DRAFT).first()
    if draft is not None:
        raise _refuse(
            "as_of",
            _("Release %(number)s (as of %(date)s) is a draft awaiting approval: approve or discard it first.")
            % {"number": draft.number, "date": _date(draft.as_of)},
        )


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise _refuse("note", _("The note is too long: at most %(count)s characters.") % {"count": NOTE_MAX_LENGTH})
    if "\x00" in note:
        raise _refuse("note", _("The note contains a character that cannot be stored."))
    screen_text(note, field="note")
    return note


def _lock() -> None:
    """One preparation or approval at a time: numbers and the budget are read and written under it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])


def release_layout(as_of: dt.date) -> protection.Layout:
    """The released series' keys: every oblast, sex and age band, today's intermediaries, the months."""
    intermediaries = sorted(
        Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).values_list("slug", flat=True)
    )
    return protection.Layout.for_date(
        as_of=as_of,
        series_start=settings.FIGURES_RELEASE_SERIES_START,
        oblasts=Oblast.values,
        sexes=SEX_KEYS,
        age_bands=AGE_BANDS,
        intermediaries=(*intermediaries, UNATTRIBUTED),
    )


def _snapshot(as_of: dt.date, *, requested_by: User | None) -> Snapshot:
    """The exact figures and release series as of ``as_of``, read now in one transaction (computed here)."""
    snapshot = Snapshot.objects.create(
        as_of=as_of, trigger=Snapshot.Trigger.RELEASE, requested_by=requested_by, min_cell=settings.FIGURES_MIN_CELL
    )
    try:
        compute_snapshot(snapshot.pk)
    except Exception as exc:
        logger.exception("Figures for a release as of %s could not be computed", as_of)
        mark_failed(snapshot.pk, error=failure_reason(exc))
    snapshot.refresh_from_db()
    if snapshot.state != Snapshot.State.DONE or snapshot.exact is None or snapshot.series is None:
        raise _refuse(
            "as_of",
            _("The figures as of %(date)s could not be computed: %(error)s")
            % {"date": _date(as_of), "error": snapshot.error or snapshot.get_state_display()},
        )
    return snapshot


def _prepare(*, as_of: dt.date, note: str, prepared_by: User | None, door: str, approve_now: bool = False) -> Release:
    note = _clean_note(note)
    rho = release_rho()
    # Before the long read, so that a refused release costs nothing; again below, under the lock.
    _check_no_draft()
    check_release_date(as_of, rho=rho)
    snapshot = _snapshot(as_of, requested_by=prepared_by)
    try:
        with transaction.atomic():
            _lock()
            _check_no_draft()
            check_release_date(as_of, rho=rho)
            number = (Release.objects.aggregate(last=Max("number"))["last"] or 0) + 1
            assert snapshot.exact is not None and snapshot.series is not None
            try:
                protected = protection.protect(
                    snapshot.exact,
                    snapshot.series,
                    layout=release_layout(as_of),
                    rho=rho,
                    k=settings.FIGURES_MIN_CELL,
                    parameters={
                        "rho_per_year": settings.FIGURES_PRIVACY_RHO_PER_YEAR,
                        "min_days": settings.FIGURES_RELEASE_MIN_DAYS,
                        "releases_per_year_at_most": protection.max_releases_per_year(
                            settings.FIGURES_RELEASE_MIN_DAYS
                        ),
                    },
                )
            except protection.ProtectionError as exc:
                logger.error("Release as of %s not protected: %s", as_of, exc)
                raise _refuse("as_of", _("The figures could not be protected: %(error)s") % {"error": exc}) from None
            figures = {"release": number, **protected.figures}
            release = Release.objects.create(
                number=number,
                as_of=as_of,
                snapshot=snapshot,
                figures=figures,
                method=protection.METHOD,
                parameters=figures["method"],
                rho=protected.rho,
                sigma=protected.sigma,
                min_cell=settings.FIGURES_MIN_CELL,
                prepared_by=prepared_by,
                prepared_through=door,
                note=note,
            )
            if approve_now:
                ReleaseApproval.objects.create(release=release, approver=None, approved_through=door)
                _mark_approved(release)
    except IntegrityError:
        # Another preparation won the race for the number or the date (SQLite has no advisory lock).
        raise _refuse("as_of", _("Another release was prepared at the same moment: reload and try again.")) from None
    release.refresh_from_db()
    return release


def _mark_approved(release: Release) -> None:
    Release.objects.filter(pk=release.pk, state=Release.State.DRAFT).update(
        state=Release.State.APPROVED, approved_at=timezone.now()
    )


def prepare_release(*, user: User, as_of: dt.date, note: str = "") -> Release:
    """A supervisor or analyst of the host organisation prepares a draft release as of ``as_of``."""
    if not permissions.can_prepare_release(user):
        raise NotPermitted(_("Only the host organisation's supervisors and analysts may prepare releases."))
    return _prepare(as_of=as_of, note=note, prepared_by=user, door=Release.Door.WEB)


def approval_refusal(user: User, release: Release, *, approvals: Sequence[ReleaseApproval]) -> str | None:
    """Why ``user`` may not approve ``release`` now (its ``approvals`` so far), or None when they may."""
    if not permissions.can_approve_release(user):
        return _("Only the host organisation's supervisors may approve releases.")
    if release.is_approved:
        return _("Release %(number)s is approved already.") % {"number": release.number}
    if settings.FIGURES_RELEASE_APPROVERS >= 2 and release.prepared_by_id == user.pk:
        return _("Two supervisors other than the one who prepared a release approve it: ask two colleagues.")
    if any(approval.approver_id == user.pk for approval in approvals):
        return _("You have approved this release already; it needs another supervisor's approval.")
    return None


def approve_release(*, user: User, release: Release) -> Release:
    """One supervisor's approval; the release is published when it has FIGURES_RELEASE_APPROVERS of them."""
    if not permissions.can_approve_release(user):
        raise NotPermitted(_("Only the host organisation's supervisors may approve releases."))
    required = settings.FIGURES_RELEASE_APPROVERS
    with transaction.atomic():
        _lock()
        locked = Release.objects.select_for_update().filter(pk=release.pk).first()
        if locked is None:
            raise _refuse("release", _("This draft was discarded."))
        refusal = approval_refusal(user, locked, approvals=list(locked.approvals.all()))
        if refusal is not None:
            raise _refuse("release", refusal)
        check_release_date(locked.as_of, rho=locked.rho, excluding=locked.pk)
        ReleaseApproval.objects.create(release=locked, approver=user, approved_through=Release.Door.WEB)
        if locked.approvals.count() >= required:
            _mark_approved(locked)
    release.refresh_from_db()
    return release


def discard_release(*, user: User, release: Release) -> None:
    """Drop a draft (and its approvals so far); an approved release is never discarded."""
    if not permissions.can_see_release_drafts(user):
        raise NotPermitted(_("Only those who prepare or approve releases may discard a draft."))
    with transaction.atomic():
        locked = Release.objects.select_for_update().filter(pk=release.pk).first()
        if locked is None:
            return
        if locked.is_approved:
            raise _refuse(
                "release", _("Release %(number)s is approved: it cannot be discarded.") % {"number": locked.number}
            )
        locked.approvals.all().delete()
        locked.delete()


def release_figures_from_command(
    *, as_of: dt.date, note: str = "", unless_released: bool = False
) -> tuple[Release, bool]:
    """The command line's door (``manage.py release_figures``): a release approved at once, recorded as such.

    Returns the release and whether it was made now. ``unless_released``: when
    an approved release as of that date exists, return it instead (a script
    such as ``make demo`` can run again).
    """
    if unless_released:
        existing = selectors.published_releases().filter(as_of=as_of).first()
        if existing is not None:
            return existing, False
    release = _prepare(as_of=as_of, note=note, prepared_by=None, door=Release.Door.COMMAND, approve_now=True)
    return release, True
