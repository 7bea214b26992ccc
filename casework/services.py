"""Every write to a case goes through here (DESIGN.md section 3).

Views, the admin, the API, the import command and tasks are doors onto these
functions. ``check_move`` holds the rules of the status machine;
``change_status`` applies one move under a row lock; ``plan_import`` (in
``casework.importing``) replays a file's moves through ``check_move`` too.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Max
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.models import Organisation
from casework import audit_chain, followups, identifying, signals
from casework.models import (
    MAIN_PATH,
    RISK_FLAGS,
    SIDE_STATUSES,
    VIA_STATUSES,
    Case,
    CaseEdit,
    CaseIdentifier,
    DisplacedPrecision,
    Oblast,
    Placement,
    Sex,
    Source,
    Status,
    StatusChange,
    StatusEvent,
)
from casework.references import new_reference
from casework.screening import linkage_digest, screen_text

if TYPE_CHECKING:
    from accounts.models import ApiToken, User

logger = logging.getLogger(__name__)

MIN_BIRTH_YEAR = 1990
# The role of an API token acting through a share.
PARTNER_ROLE = "partner"
# The only moves a partner may report (DESIGN.md section 6).
PARTNER_TARGETS: frozenset[str] = frozenset(
    {Status.LOCATED, Status.RETURN_REQUESTED, Status.REPATRIATED, Status.REUNIFIED}
)


# Choice sets built once: the importer checks every row against them.
_STATUSES = frozenset(Status.values)
_SEXES = frozenset(Sex.values)
_OBLASTS = frozenset(Oblast.values)
_SOURCES = frozenset({"", *Source.values})
_PLACEMENTS = frozenset({"", *Placement.values})
_PRECISIONS = frozenset(DisplacedPrecision.values)


class CaseNotFound(Exception):
    """The case does not exist for this actor (another organisation's case is absent, not forbidden)."""


class NotPermitted(PermissionDenied):
    """The actor's role does not allow this action."""


class StaleVersion(Exception):
    """The write was based on an older version of the case; nothing was written."""

    def __init__(self, *, case: Case, expected_version: int, changes: list[str]) -> None:
        self.case = case
        self.expected_version = expected_version
        self.current_version = case.version
        self.changes = changes
        summary = "; ".join(changes) if changes else _("no details recorded")
        super().__init__(
            _("Case %(reference)s changed since you loaded it (version %(old)s, now %(new)s): %(changes)s")
            % {"reference": case.reference, "old": expected_version, "new": case.version, "changes": summary}
        )


# What a grant (a partner's share of a case) allows, as read under the case's row lock: "update",
# "read", or None for no live grant. Given by the door that knows grants (partners), so that
# casework need not know them.
GrantScope = Callable[[int], "str | None"]
UPDATE_GRANT = "update"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user, or a system door (import, partner token) acting for an organisation.

    A partner's token acts on another organisation's cases only through a grant: ``grant_scope``
    says, for a case id and under that case's lock, what the grant allows now.
    """

    organisation_id: int
    role: str
    user: User | None = None
    label: str = ""
    is_superuser: bool = False
    token: ApiToken | None = None
    grant_scope: GrantScope | None = None

    @classmethod
    def for_user(cls, user: User) -> Actor:
        return cls(
            organisation_id=user.organisation_id,
            role=user.role,
            user=user,
            is_superuser=user.is_superuser,
        )

    @classmethod
    def for_token(cls, token: ApiToken, *, grant_scope: GrantScope) -> Actor:
        return cls(
            organisation_id=token.organisation_id,
            role=PARTNER_ROLE,
            token=token,
            label=f"API token {token.prefix}",
            grant_scope=grant_scope,
        )

    @property
    def is_partner(self) -> bool:
        return self.role == PARTNER_ROLE

    @property
    def can_correct(self) -> bool:
        return permissions.can_correct_cases(self)

    @property
    def can_edit(self) -> bool:
        return permissions.can_edit_cases(self)

    def describe(self) -> str:
        if self.user is not None:
            return self.user.get_username()
        return self.label


class MoveKind(enum.Enum):
    SAME = "same"
    FORWARD = "forward"
    CORRECTION = "correction"
    DUPLICATE = "duplicate"
    WITHDRAW = "withdraw"


def classify_move(current: str, to: str) -> MoveKind:
    if to == current:
        return MoveKind.SAME
    if to == Status.DUPLICATE:
        return MoveKind.DUPLICATE
    if to == Status.WITHDRAWN:
        return MoveKind.WITHDRAW
    if current in SIDE_STATUSES:
        return MoveKind.CORRECTION
    return MoveKind.FORWARD if MAIN_PATH.index(to) > MAIN_PATH.index(current) else MoveKind.CORRECTION


def allowed_targets(current: str, *, can_correct: bool) -> list[str]:
    """The statuses an actor may move a case to from ``current`` (for forms)."""
    targets = []
    for status in Status.values:
        kind = classify_move(current, status)
        if kind is MoveKind.SAME:
            continue
        if kind is MoveKind.FORWARD or can_correct:
            targets.append(status)
    return targets


@dataclass
class Move:
    """One requested status change, as the rules see it."""

    current: str
    to: str
    occurred_on: dt.date | None
    reported_on: dt.date
    last_occurred_on: dt.date | None
    via: Organisation | None = None
    note: str = ""
    # For a move into duplicate: the surviving case's identity and status.
    duplicate_of_given: bool = False
    duplicate_of_is_self: bool = False
    duplicate_of_status: str | None = None
    duplicate_of_same_organisation: bool = True
    errors: dict[str, list[str]] = field(default_factory=dict)

    def refuse(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, []).append(message)


def check_move(move: Move, *, can_correct: bool, today: dt.date) -> bool:
    """Apply the rules of the status machine; return whether the move is a correction.

    Raises ``NotPermitted`` when the role may not make this kind of move and
    ``ValidationError`` (keyed by field) when the move breaks a rule.
    """
    if move.to not in _STATUSES:
        move.refuse("to_status", _("“%(status)s” is not a status.") % {"status": move.to})
        raise ValidationError(move.errors)
    kind = classify_move(move.current, move.to)
    if kind is MoveKind.SAME:
        move.refuse("to_status", _("The case is already “%(status)s”.") % {"status": Status(move.to).label})
        raise ValidationError(move.errors)
    if kind is not MoveKind.FORWARD and not can_correct:
        if kind is MoveKind.CORRECTION:
            raise NotPermitted(_("Only a supervisor may move a case backwards (a correction)."))
        raise NotPermitted(_("Only a supervisor may mark a case as “%(status)s”.") % {"status": Status(move.to).label})

    # `is`, not a set of kinds: an import checks every change here, and an enum's hash is Python code.
    is_correction = kind is MoveKind.CORRECTION or (
        (kind is MoveKind.DUPLICATE or kind is MoveKind.WITHDRAW) and move.current in SIDE_STATUSES
    )
    note = (move.note or "").strip()
    if kind is MoveKind.CORRECTION and not note:
        move.refuse("note", _("A correction needs a reason: say why the status goes back."))
    elif kind is MoveKind.DUPLICATE and is_correction and not note:
        # Out of a side status (a withdrawn case found to be a duplicate): a correction like any other.
        move.refuse("note", _("A correction needs a reason: say why this case is now a duplicate."))
    if kind is MoveKind.WITHDRAW and not note:
        move.refuse("note", _("Withdrawing a case needs a reason."))
    if note:
        try:
            screen_text(note, field="note")
        except ValidationError as exc:
            for message in exc.message_dict["note"]:
                move.refuse("note", message)

    if kind is MoveKind.DUPLICATE:
        if not move.duplicate_of_given:
            move.refuse("duplicate_of", _("Name the surviving case this one duplicates."))
        elif move.duplicate_of_is_self:
            move.refuse("duplicate_of", _("A case cannot be a duplicate of itself."))
        elif not move.duplicate_of_same_organisation:
            move.refuse("duplicate_of", _("The surviving case must belong to the same organisation."))
        elif move.duplicate_of_status == Status.DUPLICATE:
            move.refuse(
                "duplicate_of", _("The surviving case is itself a duplicate: name the case it duplicates instead.")
            )
    elif move.duplicate_of_given:
        move.refuse("duplicate_of", _("Only a move to “Duplicate” names a surviving case."))

    if move.via is not None:
        if move.to not in VIA_STATUSES:
            move.refuse(
                "via",
                _("Only “Return requested”, “Repatriated” and “Reunified” may name an intermediary."),
            )
        elif move.via.kind != Organisation.Kind.INTERMEDIARY:
            move.refuse("via", _("“%(slug)s” is not an intermediary organisation.") % {"slug": move.via.slug})

    if move.occurred_on is None:
        move.refuse("occurred_on", _("Give the date this happened."))
    else:
        if move.occurred_on > today:
            move.refuse("occurred_on", _("The date is in the future."))
        if move.occurred_on < move.reported_on:
            move.refuse(
                "occurred_on",
                _("The date is before the case was reported (%(date)s).")
                % {"date": formats.date_format(move.reported_on)},
            )
        if move.last_occurred_on is not None and move.occurred_on < move.last_occurred_on:
            move.refuse(
                "occurred_on",
                _("The date is before the case's latest change (%(date)s).")
                % {"date": formats.date_format(move.last_occurred_on)},
            )
    if move.errors:
        raise ValidationError(move.errors)
    return is_correction


def _scoped_case_for_update(*, case_id: int, actor: Actor) -> Case:
    try:
        case = Case.objects.select_for_update(no_key=True).get(pk=case_id)
    except Case.DoesNotExist:
        raise CaseNotFound from None
    if actor.is_superuser or case.organisation_id == actor.organisation_id:
        return case
    if actor.is_partner and actor.grant_scope is not None:
        # Read under the case's lock: a share revoked a moment ago no longer counts.
        scope = actor.grant_scope(case.pk)
        if scope == UPDATE_GRANT:
            return case
        if scope is not None:
            raise NotPermitted(_("This case is shared with your organisation for reading only."))
    raise CaseNotFound


def _field_label(name: str) -> str:
    field_ = Case._meta.get_field(name)
    return str(getattr(field_, "verbose_name", name))


def changes_since(case: Case, version: int) -> list[str]:
    """Describe, for a conflict message, every change made after ``version``."""
    described: list[tuple[int, str]] = []
    changes = StatusChange.objects.filter(case=case, version__gt=version).select_related("recorded_by", "via")
    for change in changes:
        who = change.recorded_by.get_username() if change.recorded_by else change.recorded_via
        text = _("status %(from)s → %(to)s by %(who)s") % {
            "from": Status(change.from_status).label,
            "to": Status(change.to_status).label,
            "who": who or _("unknown"),
        }
        described.append((change.version, text))
    for edit in CaseEdit.objects.filter(case=case, version__gt=version).select_related("edited_by"):
        who = edit.edited_by.get_username() if edit.edited_by else _("unknown")
        labels = ", ".join(_field_label(name) for name in edit.fields)
        described.append((edit.version, _("%(fields)s edited by %(who)s") % {"fields": labels, "who": who}))
    return [text for _version, text in sorted(described)]


def _check_version(case: Case, expected_version: int) -> None:
    if case.version != expected_version:
        raise StaleVersion(case=case, expected_version=expected_version, changes=changes_since(case, expected_version))


_BATCH = 500  # rows a statement: well under PostgreSQL's 65,535 parameters


class _History:
    """The status changes of a ``deferred_history`` block, written at its end, and what waits for their ids."""

    def __init__(self) -> None:
        self.changes: list[StatusChange] = []
        self.rows: list[models.Model] = []
        self.last_occurred_on: dict[int, dt.date] = {}

    def add(self, change: StatusChange) -> None:
        self.changes.append(change)
        previous = self.last_occurred_on.get(change.case_id)
        if previous is None or change.occurred_on > previous:
            self.last_occurred_on[change.case_id] = change.occurred_on

    def write(self) -> None:
        if not self.changes:
            return
        # What the block wrote (the cases moved, their tasks, the answers) is checked before the head is
        # locked, not by the commit while it is held.
        audit_chain.check_deferred_constraints()
        with audit_chain.appending(StatusChange) as chain:
            for change in self.changes:
                chain.seal(change)
            # Inserted in chain order: the ids follow the chain (audit_chain).
            StatusChange.objects.bulk_create(self.changes, batch_size=_BATCH)
        StatusEvent.objects.bulk_create(
            [StatusEvent(status_change=change) for change in self.changes], batch_size=_BATCH
        )
        # The rows that name them (or name rows that do), each model's in the order given, the models in the
        # order first given: a row naming another given earlier finds its id set.
        by_model: dict[type[models.Model], list[models.Model]] = {}
        for row in self.rows:
            by_model.setdefault(type(row), []).append(row)
        for model, rows in by_model.items():
            model._default_manager.bulk_create(rows, batch_size=_BATCH)
        for change in self.changes:
            transaction.on_commit(
                partial(signals.status_change_recorded.send, sender=StatusChange, change_id=change.pk)
            )


_deferred = threading.local()


@contextmanager
def deferred_history() -> Iterator[None]:
    """Inside a long transaction (an answered sheet moving hundreds of children), the status history's rows kept
    until the block ends, then chained and written together, in the same transaction.

    Every status change in the register appends to the history under its chain's one head, which a
    transaction locks from its first append to its commit: a sheet appending as it went held it from its first
    move to its commit (41 s for 1,000 answers that each moved a child, on PostgreSQL here), and every
    caseworker's status change waited, or was refused as busy. Deferred, the head is locked from the block's end
    to the commit only (0.56 s for the same sheet).

    Inside the block ``change_status`` checks, locks and moves the case, runs the follow-up rules and returns
    the change unsaved (no id yet); rows that need its id (an answer that records it) are given to
    ``insert_after_history``, which inserts them once the changes are written, in the order given. The rows,
    their order and their times are those of changes made one by one. A block that raises writes none of them:
    use it where a refusal anywhere rolls the whole transaction back. Blocks nest (the outermost writes). Put it
    inside ``audit.deferred_access_log``: the history's head is then taken before the access log's, as
    everywhere.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("deferred_history() belongs inside the transaction that will write the rows")
    outer: _History | None = getattr(_deferred, "history", None)
    history = _History() if outer is None else outer
    _deferred.history = history
    try:
        yield
    finally:
        _deferred.history = outer
    if outer is None:
        history.write()


def insert_after_history(*rows: models.Model) -> None:
    """Insert ``rows`` (unsaved) once the status changes the current ``deferred_history`` block holds are
    written, with their outbox rows, in bulk, in the order given (an answer naming a change, then its event);
    at once (``save()``) when none is waiting or outside such a block, so that what is recorded keeps its
    order. Rows inserted in bulk run no ``save()`` of their model's and send no signal: only for rows whose
    ``save()`` adds nothing."""
    history: _History | None = getattr(_deferred, "history", None)
    if history is None or not history.changes:
        for row in rows:
            row.save()
    else:
        history.rows.extend(rows)


def change_status(
    *,
    case: Case,
    actor: Actor,
    to_status: str,
    occurred_on: dt.date | None,
    expected_version: int,
    via: Organisation | None = None,
    note: str = "",
    duplicate_of: Case | None = None,
) -> StatusChange:
    """Move a case to ``to_status``: lock, check, append the history row, update the case.

    Inside ``deferred_history`` the row is appended at the block's end: the change comes back without an id."""
    if not actor.can_edit and not actor.is_partner:
        raise NotPermitted(_("Your role cannot change a case's status."))
    with transaction.atomic():
        locked = _scoped_case_for_update(case_id=case.pk, actor=actor)
        _check_version(locked, expected_version)
        if actor.is_partner and (
            to_status not in PARTNER_TARGETS or classify_move(locked.status, to_status) is not MoveKind.FORWARD
        ):
            raise NotPermitted(
                _("Partners may only report forward moves to located, return requested, repatriated or reunified.")
            )
        last_occurred_on = StatusChange.objects.filter(case=locked).aggregate(last=Max("occurred_on"))["last"]
        history: _History | None = getattr(_deferred, "history", None)
        waiting = history.last_occurred_on.get(locked.pk) if history is not None else None
        if waiting is not None and (last_occurred_on is None or waiting > last_occurred_on):
            last_occurred_on = waiting
        move = Move(
            current=locked.status,
            to=to_status,
            occurred_on=occurred_on,
            reported_on=locked.reported_on,
            last_occurred_on=last_occurred_on,
            via=via,
            note=note,
            duplicate_of_given=duplicate_of is not None,
            duplicate_of_is_self=duplicate_of is not None and duplicate_of.pk == locked.pk,
            duplicate_of_status=duplicate_of.status if duplicate_of is not None else None,
            duplicate_of_same_organisation=duplicate_of is None
            or duplicate_of.organisation_id == locked.organisation_id,
        )
        is_correction = check_move(move, can_correct=actor.can_correct, today=timezone.localdate())
        now = timezone.now()
        assert occurred_on is not None  # check_move refuses a missing date
        change = StatusChange(
            case=locked,
            from_status=locked.status,
            to_status=to_status,
            occurred_on=occurred_on,
            recorded_at=now,
            recorded_by=actor.user,
            recorded_by_token=actor.token,
            recorded_via="" if actor.user else actor.label,
            via=via,
            duplicate_of=duplicate_of,
            note=note.strip(),
            is_correction=is_correction,
            version=locked.version + 1,
        )
        if history is None:
            with audit_chain.appending(StatusChange) as chain:
                chain.seal(change)
                change.save()
        locked.status = to_status
        locked.version += 1
        locked.last_change_at = now
        locked.save(update_fields=["status", "version", "last_change_at", "updated_at"])
        # The organisation's follow-up rules, in the same transaction (casework.followups).
        followups.after_status_change(case=locked, change=change, user=actor.user)
        if history is not None:
            history.add(change)  # written with its outbox row at the block's end (deferred_history)
        else:
            # Announced to whoever follows the case (partners' webhooks) through the outbox, written in
            # this transaction: the announcement cannot be lost, and casework needs to know nobody.
            StatusEvent.objects.create(status_change=change)
            transaction.on_commit(
                partial(signals.status_change_recorded.send, sender=StatusChange, change_id=change.pk)
            )
    case.status, case.version, case.last_change_at = locked.status, locked.version, locked.last_change_at
    return change


# --- case fields ---------------------------------------------------------

EDITABLE_FIELDS: tuple[str, ...] = (
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "displaced_precision",
    "source",
    "placement",
    "institution",
    "assigned_to",
    *(f"risk_{flag}" for flag in RISK_FLAGS),
    "notes",
)


def normalise_case_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A deportation date known to the month only is kept as the month's first day."""
    normal = dict(values)
    displaced_on = normal.get("displaced_on")
    if isinstance(displaced_on, dt.date) and normal.get("displaced_precision") == DisplacedPrecision.MONTH:
        normal["displaced_on"] = displaced_on.replace(day=1)
    return normal


def validate_case_values(values: Mapping[str, Any], *, today: dt.date) -> dict[str, list[str]]:
    """Check the fields of a case record; return errors keyed by field (empty when valid)."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if values.get("sex") not in _SEXES:
        refuse("sex", _("Choose F, M or U (unknown)."))
    if values.get("oblast") not in _OBLASTS:
        refuse("oblast", _("Give the oblast as an ISO 3166-2:UA code, e.g. UA-14."))
    if values.get("source", "") not in _SOURCES:
        refuse("source", _("Unknown source."))
    if values.get("placement", "") not in _PLACEMENTS:
        refuse("placement", _("Unknown placement."))
    reported_on = values.get("reported_on")
    if not isinstance(reported_on, dt.date):
        refuse("reported_on", _("Give the date the report was received."))
        reported_on = None
    elif reported_on > today:
        refuse("reported_on", _("The report date is in the future."))
    birth_year = values.get("birth_year")
    if birth_year is not None:
        latest = reported_on.year if reported_on else today.year
        if not isinstance(birth_year, int) or not MIN_BIRTH_YEAR <= birth_year <= latest:
            refuse(
                "birth_year",
                _("The birth year must be between %(first)s and the year of the report (%(last)s).")
                % {"first": MIN_BIRTH_YEAR, "last": latest},
            )
    displaced_on = values.get("displaced_on")
    precision = values.get("displaced_precision") or ""
    if displaced_on is not None:
        if precision not in _PRECISIONS:
            refuse("displaced_on", _("Say whether the deportation date is a month or a day."))
        if displaced_on > today:
            refuse("displaced_on", _("The deportation date is in the future."))
        elif reported_on is not None and displaced_on > reported_on:
            refuse("displaced_on", _("The deportation date is after the report date."))
    elif precision:
        refuse("displaced_on", _("A precision was given without a deportation date."))
    notes = values.get("notes") or ""
    if notes:
        try:
            screen_text(notes, field="notes")
        except ValidationError as exc:
            errors.setdefault("notes", []).extend(exc.message_dict["notes"])
    return errors


def _generate_unique_reference() -> str:
    for _attempt in range(20):
        reference = new_reference()
        if not Case.objects.filter(reference=reference).exists():
            return reference
    raise RuntimeError("Could not generate a unique case reference")  # 32**8 space: practically unreachable


def create_case(
    *,
    actor: Actor,
    values: Mapping[str, Any],
    identifiers: Iterable[tuple[str, str]] = (),
    details: identifying.IdentifyingDetails | None = None,
) -> Case:
    """Create a case owned by the actor's organisation. ``identifiers`` are (kind, value) pairs to hash;
    ``details`` (names, date and place of birth) go to the receivers of ``casework.identifying``, in the
    same transaction, and are never stored here."""
    if not actor.can_edit:
        raise NotPermitted(_("Your role cannot create cases."))
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not case fields: {sorted(unknown)}")
    data = normalise_case_values({"sex": Sex.UNKNOWN, "source": "", "placement": "", "notes": "", **values})
    errors = validate_case_values(data, today=timezone.localdate())
    _check_assignee(data.get("assigned_to"), actor, errors)
    if errors:
        raise ValidationError(errors)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    reference=_generate_unique_reference(), organisation_id=actor.organisation_id, **data
                )
                _store_identifiers(case, identifiers)
                followups.after_case_created(case=case)
                if details:
                    identifying.deliver(case=case, details=details)
                return case
        except IntegrityError:
            continue  # a reference collision between the check and the insert
    raise RuntimeError("Could not store the case")


def _check_assignee(assignee: Any, actor: Actor, errors: dict[str, list[str]]) -> None:
    if assignee is not None and assignee.organisation_id != actor.organisation_id:
        errors.setdefault("assigned_to", []).append(_("The caseworker must belong to your organisation."))


def _store_identifiers(case: Case, identifiers: Iterable[tuple[str, str]]) -> None:
    rows = [
        CaseIdentifier(case=case, kind=kind, digest=linkage_digest(value, kind=kind))
        for kind, value in identifiers
        if value and value.strip()
    ]
    CaseIdentifier.objects.bulk_create(rows, ignore_conflicts=True)


def add_identifiers(*, case: Case, actor: Actor, identifiers: Iterable[tuple[str, str]]) -> None:
    if not actor.can_edit:
        raise NotPermitted(_("Your role cannot edit cases."))
    if not actor.is_superuser and case.organisation_id != actor.organisation_id:
        raise CaseNotFound
    _store_identifiers(case, identifiers)


def update_case(
    *,
    case: Case,
    actor: Actor,
    expected_version: int,
    values: Mapping[str, Any],
    details: identifying.IdentifyingDetails | None = None,
) -> Case:
    """Edit a case's fields under a row lock; refuse a write based on a stale version. ``details``: as for
    ``create_case``; given alone they change no field and no version."""
    if not actor.can_edit:
        raise NotPermitted(_("Your role cannot edit cases."))
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable case fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = _scoped_case_for_update(case_id=case.pk, actor=actor)
        _check_version(locked, expected_version)
        current = {name: getattr(locked, name) for name in EDITABLE_FIELDS}
        merged = normalise_case_values({**current, **values})
        errors = validate_case_values(merged, today=timezone.localdate())
        _check_assignee(merged.get("assigned_to"), actor, errors)
        if merged["reported_on"] != locked.reported_on and isinstance(merged["reported_on"], dt.date):
            first = StatusChange.objects.filter(case=locked).order_by("occurred_on", "id").first()
            if first is not None and merged["reported_on"] > first.occurred_on:
                errors.setdefault("reported_on", []).append(
                    _("The report date cannot be after the case's first status change (%(date)s).")
                    % {"date": formats.date_format(first.occurred_on)}
                )
        if errors:
            raise ValidationError(errors)
        if details:
            identifying.deliver(case=locked, details=details)
        changed = [name for name in EDITABLE_FIELDS if merged[name] != current[name]]
        if not changed:
            return locked
        previous_assignee = locked.assigned_to_id
        for name in changed:
            setattr(locked, name, merged[name])
        locked.version += 1
        locked.save()
        if "assigned_to" in changed:
            # Follow-ups move with the case (casework.followups).
            followups.after_reassignment(
                case_ids=[locked.pk], previous={locked.pk: previous_assignee}, to_user_id=locked.assigned_to_id
            )
        CaseEdit.objects.create(
            case=locked, version=locked.version, edited_at=timezone.now(), edited_by=actor.user, fields=changed
        )
    return locked
