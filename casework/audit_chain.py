"""Hash chains over the status history and the access log: a row changed, inserted or removed is found.

Each row carries ``chain_hash`` = SHA-256 of the previous row's hash and the
row's own content (in a fixed, canonical form). Rows are chained in id order:
writers append under a lock of the table's ``AuditChainHead``, in the
transaction that inserts them, so the ids of committed rows follow the chain.
``verify`` walks a table from its first row (or from the anchor the retention
policy left when it erased the oldest rows) and reports the first link that
does not hold: ``manage.py verify_audit``.

Privileges keep the application from rewriting these tables (it may only
insert and read them; see docs/operations.md); the chain is what shows an
edit made around them, by whoever holds more rights. A history note is
covered through its digest (``note_digest``): the retention policy may erase
a note without breaking the chain, and an altered note still shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction

from casework.models import AccessLog, AuditChainHead, Case, RetentionRun, Status, StatusChange

GENESIS = "0" * 64
EMPTY_NOTE = hashlib.sha256(b"").hexdigest()

# The content each chain covers, by attribute name, in this order.
FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    StatusChange: (
        "case_id",
        "from_status",
        "to_status",
        "occurred_on",
        "recorded_at",
        "recorded_by_id",
        "recorded_by_token_id",
        "recorded_via",
        "via_id",
        "duplicate_of_id",
        "note_digest",
        "is_correction",
        "version",
    ),
    AccessLog: ("at", "user_id", "token_id", "organisation_id", "case_id", "action", "door", "ip_address"),
}


def note_digest(note: str) -> str:
    return hashlib.sha256(note.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def normal_address(address: str | None) -> str | None:
    """An IP address as the database gives it back (so the hash made now is the hash checked later)."""
    if not address:
        return None
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return ip.compressed


def link(previous: str, model: type[models.Model], values: Mapping[str, Any]) -> str:
    content = json.dumps([_canonical(values[name]) for name in FIELDS[model]], separators=(",", ":"))
    return hashlib.sha256(f"{previous}|{content}".encode()).hexdigest()


def content_around(model: type[models.Model], common: Mapping[str, Any], name: str) -> tuple[str, str]:
    """The canonical content (as ``link`` hashes it) of rows that differ only in ``name``, as the text before
    and after that field's value: a row's content is ``before + value + after``, the value in JSON (``null``,
    a number, a quoted string). Not for the history, whose rows each have a note's digest of their own."""
    if model is StatusChange:
        raise ValueError("the history's rows are sealed one by one (seal_values)")
    fields = FIELDS[model]
    at = fields.index(name)
    before = "".join(json.dumps(_canonical(common[field])) + "," for field in fields[:at])
    after = "".join("," + json.dumps(_canonical(common[field])) for field in fields[at + 1 :])
    return "[" + before, after + "]"


def _table(model: type[models.Model]) -> str:
    return model._meta.db_table


class Chain:
    """Appends to one table's chain inside a transaction that holds its head's lock."""

    def __init__(self, model: type[models.Model], head: AuditChainHead) -> None:
        self.model = model
        self.head = head
        self.last = head.last_hash

    def seal(self, instance: models.Model) -> None:
        """Give a row (not yet saved) its place in the chain."""
        if isinstance(instance, StatusChange):
            instance.note_digest = note_digest(instance.note)
        if isinstance(instance, AccessLog):
            instance.ip_address = normal_address(instance.ip_address)
        self.last = link(self.last, self.model, {name: getattr(instance, name) for name in FIELDS[self.model]})
        setattr(instance, "chain_hash", self.last)  # noqa: B010 (both chained models have it)

    def seal_values(self, values: dict[str, Any]) -> str:
        """The same for a row given as values (bulk writers): fills note_digest and returns the row's hash."""
        if self.model is StatusChange:
            values["note_digest"] = note_digest(values.get("note") or "")
        self.last = link(self.last, self.model, values)
        return self.last

    def seal_rows(self, fields: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """Rows given as tuples of ``fields`` (bulk writers), each extended by ``sealed_fields(fields)``'s extra
        columns: the note's digest (the history) and the chain hash. Fields a row does not give are taken at
        their model defaults, as the bulk writers store them. The rows must be inserted in this order."""
        concrete = {f.attname: f for f in self.model._meta.concrete_fields}
        defaults = {
            name: concrete[name].get_default()
            for name in FIELDS[self.model]
            if name not in fields and name != "note_digest"
        }
        # The same links as ``link``, made faster for many rows: the encoder built once, and the values that
        # repeat (dates, the write's time, notes' digests) made canonical once (bounded caches).
        names = FIELDS[self.model]
        encode = json.JSONEncoder(separators=(",", ":")).encode
        sha256 = hashlib.sha256
        plain = (int, str, bool, type(None))
        canonical: dict[Any, Any] = {}
        digests: dict[str, str] = {}
        history = self.model is StatusChange
        for row in rows:
            values = dict(defaults)
            values.update(zip(fields, row, strict=True))
            if history:
                note = values.get("note") or ""
                digest = digests.get(note)
                if digest is None:
                    if len(digests) > 10_000:
                        digests.clear()
                    digest = digests[note] = note_digest(note)
                values["note_digest"] = digest
            content = []
            for name in names:
                value = values[name]
                if type(value) not in plain:
                    found = canonical.get(value)
                    if found is None:
                        if len(canonical) > 10_000:
                            canonical.clear()
                        found = canonical[value] = _canonical(value)
                    value = found
                content.append(value)
            self.last = sha256(f"{self.last}|{encode(content)}".encode()).hexdigest()
            if history:
                yield (*row, values["note_digest"], self.last)
            else:
                yield (*row, self.last)

    def history_sealer(self, *, recorded_at: dt.datetime, recorded_via: str) -> Callable[..., str]:
        """Links of history rows with no user and no token (an import's), from values already in their canonical
        form (ids, status codes, checked ISO dates, hex digests: nothing to escape in JSON): the same links as
        ``link``, without building a row's dict or calling the encoder.

        ``seal(case_id, from_status, to_status, occurred_on, via_id, duplicate_of_id, note_digest, is_correction,
        version)`` returns the row's chain hash.
        """
        assert self.model is StatusChange
        assert FIELDS[StatusChange] == (
            "case_id", "from_status", "to_status", "occurred_on", "recorded_at", "recorded_by_id",
            "recorded_by_token_id", "recorded_via", "via_id", "duplicate_of_id", "note_digest", "is_correction",
            "version",
        )  # fmt: skip
        sha256 = hashlib.sha256
        # The JSON of the values ``link`` encodes, written directly: ids are ints, the codes, ISO dates and hex
        # digests need no escaping (checked once here against the encoder, for the constant part).
        at = _canonical(recorded_at)
        middle = json.dumps([at, None, None, recorded_via], separators=(",", ":"))[1:-1]

        def seal(
            case_id: int,
            from_status: str,
            to_status: str,
            occurred_on: str,
            via_id: int | None,
            duplicate_of_id: int | None,
            digest: str,
            is_correction: bool,
            version: int,
        ) -> str:
            content = (
                f'[{case_id},"{from_status}","{to_status}","{occurred_on}",{middle},'
                f"{'null' if via_id is None else via_id},{'null' if duplicate_of_id is None else duplicate_of_id},"
                f'"{digest}",{"true" if is_correction else "false"},{version}]'
            )
            self.last = sha256(f"{self.last}|{content}".encode()).hexdigest()
            return self.last

        return seal


def sealed_fields(model: type[models.Model], fields: Sequence[str]) -> tuple[str, ...]:
    """The columns ``Chain.seal_rows`` gives for rows of ``fields``."""
    extra = ("note_digest", "chain_hash") if model is StatusChange else ("chain_hash",)
    return (*fields, *extra)


def check_deferred_constraints() -> None:
    """Check now what COMMIT would check first: the foreign keys of the rows this transaction has written
    (Django creates them ``DEFERRABLE INITIALLY DEFERRED``), then defer them again for what follows.

    A chain's head, once locked, is held until the commit, and the commit checks every deferred foreign key
    before it ends. A transaction that wrote many rows and then appends to a chain held the head through
    those checks: a web import of 100,000 rows held the access log's head for 0.6 to 0.8 s, and every page
    view in the register waited. Such long writers call this before they append (``audit.deferred_access_log``
    at its end, the web import before its access-log row, a list sent or cases shared before theirs, the
    importer before the history's rows): the checks cost the same and hold nobody up, and a row that breaks
    one is refused here rather than at the commit, as an ``IntegrityError`` either way. Short transactions
    (a page view, one status change) do not: they have little to check. Deferring them all again restores
    the schema's own modes: every deferrable constraint of the register is a foreign key created initially
    deferred (``tests/test_chain_head_lock.py`` checks it). PostgreSQL only: SQLite checks nothing deferred
    and has one writer at a time.
    """
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED")


@contextmanager
def appending(model: type[models.Model]) -> Iterator[Chain]:
    """Lock the table's chain for this transaction, hand out links, and move the head on.

    The head is held until the transaction commits: a long writer calls ``check_deferred_constraints`` first.
    """
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(table=_table(model)).first()
        if head is None:
            head, _created = AuditChainHead.objects.get_or_create(table=_table(model), defaults={"last_hash": GENESIS})
            head = AuditChainHead.objects.select_for_update().get(pk=head.pk)
        chain = Chain(model, head)
        yield chain
        if chain.last != head.last_hash:
            AuditChainHead.objects.filter(pk=head.pk).update(last_hash=chain.last)


# --- verifying ---------------------------------------------------------------------------


@dataclass
class Report:
    table: str
    rows: int = 0
    erased_notes: int = 0
    last_id: int | None = None
    last_hash: str | None = None
    first_broken: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.first_broken is None


def _start(model: type[models.Model]) -> str:
    """Where a table's chain starts: the genesis, or the anchor the latest retention run left."""
    if model is AccessLog:
        run = RetentionRun.objects.exclude(access_log_anchor="").order_by("-ran_at", "-id").first()
        if run is not None and AccessLog.objects.exists():
            return run.access_log_anchor
    return GENESIS


def verify(model: type[models.Model], *, batch: int = 5000) -> Report:
    """Walk a table in id order and recompute every link; report the first that does not hold."""
    report = Report(table=_table(model))
    previous = _start(model)
    erased_cases: set[int] = set()
    names = FIELDS[model]
    extra = ("note",) if model is StatusChange else ()
    rows: Iterable[Sequence[Any]] = (
        model._default_manager.order_by("pk").values_list("pk", "chain_hash", *names, *extra).iterator(batch)
    )
    for row in rows:
        pk, stored = row[0], row[1]
        values = dict(zip(names, row[2 : 2 + len(names)], strict=True))
        report.rows += 1
        if model is StatusChange:
            note = row[-1]
            if note and note_digest(note) != values["note_digest"]:
                report.first_broken = report.first_broken or f"{report.table} id {pk}: the note was changed"
                report.problems.append(f"{report.table} id {pk}: the note does not match its digest")
            elif not note and values["note_digest"] != EMPTY_NOTE:
                report.erased_notes += 1  # erased by the retention policy: the chain still holds
                erased_cases.add(values["case_id"])
        if model is AccessLog:
            values["ip_address"] = normal_address(values["ip_address"])
        expected = link(previous, model, values)
        if stored != expected:
            reason = "has no link (written around the application)" if not stored else "does not match its content"
            problem = f"{report.table} id {pk}: {reason}, or a row before it was changed, added or removed"
            report.first_broken = report.first_broken or problem
            report.problems.append(problem)
            previous = stored or expected  # go on from what is there, to find later breaks too
        else:
            previous = stored
        report.last_id, report.last_hash = pk, stored
    _check_head(model, report, previous)
    if model is StatusChange and erased_cases:
        _check_erased_notes(report, erased_cases)
    return report


def _problem(report: Report, problem: str) -> None:
    report.first_broken = report.first_broken or problem
    report.problems.append(problem)


def _check_head(model: type[models.Model], report: Report, previous: str) -> None:
    """The chain must end at its head: rows removed at the end (or all of them) leave the head behind."""
    head = AuditChainHead.objects.filter(table=report.table).first()
    if head is None:
        if report.rows:
            _problem(report, f"{report.table}: the head of the chain is missing (it is never removed)")
        return
    if report.rows:
        if head.last_hash != previous:
            _problem(report, f"{report.table}: the last row is not the chain's head (rows at the end were removed)")
        return
    # No row: the head must still be where the chain starts, or where the retention policy left it.
    allowed = {GENESIS}
    if model is AccessLog:
        allowed |= set(RetentionRun.objects.exclude(access_log_anchor="").values_list("access_log_anchor", flat=True))
    if head.last_hash not in allowed:
        _problem(report, f"{report.table}: no row left, but the chain had rows (rows were removed)")


def _check_erased_notes(report: Report, case_ids: set[int]) -> None:
    """A note is erased only by the retention policy, only on a case closed as withdrawn or a duplicate."""
    open_cases = Case.objects.filter(pk__in=case_ids).exclude(status__in=[Status.WITHDRAWN, Status.DUPLICATE])
    for pk in open_cases.order_by("pk").values_list("pk", flat=True)[:20]:
        _problem(report, f"{report.table}: a note of case id {pk} was erased, but the case is not closed")


def check_anchor(table: str, row_id: int, expected: str) -> str | None:
    """A link recorded outside the database earlier (``verify_audit`` prints the last one): still there?

    Whoever rewrites rows and recomputes every later link (the owner, a database superuser) leaves a chain
    that verifies, but not the links already recorded elsewhere. Returns the problem, or None.
    """
    models_by_table = {_table(model): model for model in FIELDS}
    model = models_by_table.get(table)
    if model is None:
        return f"{table}: not an audited table (one of {', '.join(sorted(models_by_table))})"
    stored = model._default_manager.filter(pk=row_id).values_list("chain_hash", flat=True).first()
    if stored is None:
        erased = model is AccessLog and RetentionRun.objects.filter(access_log_anchor__gt="").exists()
        if erased and not model._default_manager.filter(pk__lte=row_id).exists():
            return None  # erased by the retention policy since it was recorded
        return f"{table} id {row_id}: the recorded row is gone"
    if stored != expected:
        return f"{table} id {row_id}: its link is not the one recorded (the chain was rewritten up to it)"
    return None


def verify_all() -> list[Report]:
    return [verify(model) for model in FIELDS]
