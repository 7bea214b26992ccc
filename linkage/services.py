"""Writes of linkage: encodings stored, candidates found, decisions recorded (DESIGN.md section 11).

- ``receive_case_details`` and ``receive_import_details`` are the receivers of
  ``casework.identifying``: called inside the transaction that writes a case or an import, they
  encode the details, store the encodings and blocking keys, and drop the values. One case's
  candidates are then looked for as soon as the transaction commits (a few milliseconds); an
  import's by a Celery job, in chunks, with its progress in a ``MatchJob``.
- ``match_cases`` looks for the candidates of some cases (blocking keys shared in the database,
  then ``linkage.matching``) and keeps the pairs scoring at least ``LINKAGE_REVIEW_SCORE``.
- ``decide`` records a reviewer's decision on a pair ("same child" or "different children"); within
  an organisation "same child" marks the later case a duplicate through the status service. Each
  decision is a row of the append-only trail and an access-log row; a later decision reverses it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts import permissions
from casework import audit, bulk
from casework import services as case_services
from casework.identifying import IdentifyingDetails
from casework.models import AccessLog, Case, Status
from linkage import columns, register
from linkage.columns import Columns, KeyIndex
from linkage.encoding import DATE_EXTRAS, FIELDS, Encoding, default_encoder
from linkage.matching import MAX_BLOCK, Pair, Record
from linkage.models import BlockKey, Candidate, CaseEncoding, Decision, LinkDecision, MatchJob

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

ENCODED_FIELDS: tuple[str, ...] = (*FIELDS, *DATE_EXTRAS)
# Cases matched per transaction by a job: small enough to keep locks and memory short.
JOB_CHUNK = 2000
# Cases waiting from which a job reads the whole register into memory rather than query their neighbours.
BULK_FROM = 2000
# SQLite caps the number of parameters of one statement.
_IN_CHUNK = 900


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- storing encodings -------------------------------------------------------------


def _encoding_of(row: CaseEncoding) -> Encoding:
    return _encoding(_bytes(getattr(row, name)) for name in ENCODED_FIELDS)


def _encoding(values: Iterable[bytes | None], blocks: tuple[int, ...] = ()) -> Encoding:
    """An Encoding from its fields in the order of ENCODED_FIELDS."""
    given, family, patronymic, date, place, swapped, month = values
    return Encoding(
        given_name=given,
        family_name=family,
        patronymic=patronymic,
        birth_date=date,
        birth_place=place,
        birth_date_swapped=swapped,
        birth_month=month,
        blocks=blocks,
    )


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)  # memoryview on PostgreSQL


@sensitive_variables("details")
def receive_case_details(case: Case, details: IdentifyingDetails) -> None:
    """casework.identifying's receiver for one case: encode, store (merged over what was stored before:
    details not given this time keep their encodings), and look for candidates once committed."""
    encoding = default_encoder().encode(details)
    store_encoding(case_id=case.pk, encoding=encoding)
    transaction.on_commit(partial(match_after_commit, case.pk))


def store_encoding(*, case_id: int, encoding: Encoding, merge: bool = True) -> None:
    """Store a case's encoding and blocking keys; ``merge``: over the fields stored before (an edit that gives
    some details only), else in their place."""
    with transaction.atomic():
        existing = CaseEncoding.objects.select_for_update().filter(case_id=case_id).first()
        if existing is not None and merge:
            earlier = _encoding_of(existing)
            keys = tuple(BlockKey.objects.filter(case_id=case_id).values_list("key", flat=True))
            encoding = encoding.merged_over(replace(earlier, blocks=keys))
        values = {name: getattr(encoding, name) for name in ENCODED_FIELDS}
        CaseEncoding.objects.update_or_create(
            case_id=case_id, defaults={**values, "encoded_at": timezone.now(), "matched_at": None}
        )
        BlockKey.objects.filter(case_id=case_id).delete()
        BlockKey.objects.bulk_create([BlockKey(case_id=case_id, key=key) for key in encoding.blocks])


def match_after_commit(case_id: int) -> None:
    """One case's candidates, right after its details were stored. A failure leaves the case waiting
    (``matched_at`` empty) for the sweep, and never undoes the case."""
    try:
        match_cases([case_id])
    except Exception as error:  # the case is saved; the sweep will look again
        logger.error("linkage: candidates of case %s not looked for (%s); left to the sweep", case_id, type(error))


# Cases encoded and written per round by an import's receiver: memory holds one round, whatever the import.
IMPORT_CHUNK = 2000


@sensitive_variables("details", "chunk")
def receive_import_details(organisation_id: int, details: Iterable[tuple[int, IdentifyingDetails]]) -> None:
    """casework.identifying's receiver for an import: encode every case (new cases, so nothing to merge),
    write the encodings and keys in bulk, a chunk at a time as the import streams them, and queue a job
    that looks for their candidates."""
    encoder = default_encoder()
    total = 0
    chunk: list[tuple[int, IdentifyingDetails]] = []
    for item in details:
        chunk.append(item)
        if len(chunk) >= IMPORT_CHUNK:
            total += _store_import_chunk(encoder, chunk)
            chunk = []
    if chunk:
        total += _store_import_chunk(encoder, chunk)
    del chunk
    if not total:
        return
    job = MatchJob.objects.create(organisation_id=organisation_id, total=total)
    from linkage import tasks  # the task module imports this one

    transaction.on_commit(partial(tasks.queue_job, job.pk))


@sensitive_variables("details")
def _store_import_chunk(encoder: Any, details: Sequence[tuple[int, IdentifyingDetails]]) -> int:
    case_ids = [case_id for case_id, _details in details]
    encodings = list(encoder.encode_many(one for _case_id, one in details))
    now = timezone.now()
    if connection.vendor == "postgresql":
        layout = bulk.Layout.of(CaseEncoding, ("case_id", *ENCODED_FIELDS, "encoded_at"), now)
        bulk.copy_rows(
            layout,
            (
                (case_id, *(getattr(encoding, name) for name in ENCODED_FIELDS), now)
                for case_id, encoding in zip(case_ids, encodings, strict=True)
            ),
        )
        bulk.copy_rows(
            bulk.Layout.of(BlockKey, ("case_id", "key"), now),
            ((case_id, key) for case_id, encoding in zip(case_ids, encodings, strict=True) for key in encoding.blocks),
        )
    else:
        CaseEncoding.objects.bulk_create(
            [
                CaseEncoding(case_id=case_id, encoded_at=now, **{name: getattr(e, name) for name in ENCODED_FIELDS})
                for case_id, e in zip(case_ids, encodings, strict=True)
            ],
            batch_size=500,
        )
        BlockKey.objects.bulk_create(
            [
                BlockKey(case_id=case_id, key=key)
                for case_id, encoding in zip(case_ids, encodings, strict=True)
                for key in encoding.blocks
            ],
            batch_size=2000,
        )
    return len(case_ids)


# --- finding candidates ------------------------------------------------------------

_RECORD_FIELDS = ("case_id", "case__organisation_id", "case__sex", "case__oblast", *ENCODED_FIELDS)


def load_records(case_ids: Iterable[int]) -> dict[int, Record]:
    """The encodings of these cases as matching reads them (one query per few hundred cases)."""
    found: dict[int, Record] = {}
    ids = sorted(set(case_ids))
    for chunk in _chunks(ids, _IN_CHUNK if connection.vendor != "postgresql" else len(ids) or 1):
        rows = CaseEncoding.objects.filter(case_id__in=chunk).values_list(*_RECORD_FIELDS)
        for case_id, organisation_id, sex, oblast, *fields in rows:
            encoding = _encoding(_bytes(value) for value in fields)
            found[case_id] = Record.of(
                id=case_id, organisation_id=organisation_id, encoding=encoding, sex=sex, oblast=oblast
            )
    return found


_KEYS = BlockKey._meta.db_table


def neighbours(case_ids: Sequence[int]) -> dict[int, set[int]]:
    """For each case, the other cases that share a blocking key with it, crowded keys left out
    (``MAX_BLOCK``). Three queries whatever the number of cases (on SQLite, per few hundred)."""
    found: dict[int, set[int]] = {case_id: set() for case_id in case_ids}
    for chunk in _chunks(list(case_ids), _IN_CHUNK if connection.vendor != "postgresql" else len(case_ids) or 1):
        keys = BlockKey.objects.filter(case_id__in=chunk).values_list("key", flat=True)
        key_list = sorted(set(keys))
        if not key_list:
            continue
        crowded: set[int] = set()
        usable: list[int] = []
        with connection.cursor() as cursor:
            for key_chunk in _chunks(key_list, _IN_CHUNK if connection.vendor != "postgresql" else len(key_list)):
                if connection.vendor == "postgresql":
                    cursor.execute(
                        f"SELECT key FROM {_KEYS} WHERE key = ANY(%s) GROUP BY key HAVING COUNT(*) > %s",  # noqa: S608
                        [list(key_chunk), MAX_BLOCK],
                    )
                else:
                    marks = ", ".join(["%s"] * len(key_chunk))
                    cursor.execute(
                        f"SELECT key FROM {_KEYS} WHERE key IN ({marks}) GROUP BY key HAVING COUNT(*) > %s",  # noqa: S608
                        [*key_chunk, MAX_BLOCK],
                    )
                crowded.update(row[0] for row in cursor.fetchall())
            usable = [key for key in key_list if key not in crowded]
            if not usable:
                continue
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"SELECT DISTINCT mine.case_id, other.case_id FROM {_KEYS} mine "  # noqa: S608
                    f"JOIN {_KEYS} other ON other.key = mine.key AND other.case_id <> mine.case_id "
                    "WHERE mine.case_id = ANY(%s) AND mine.key = ANY(%s)",
                    [list(chunk), usable],
                )
                pairs = cursor.fetchall()
            else:
                pairs = []
                for key_chunk in _chunks(usable, _IN_CHUNK - len(chunk)):
                    case_marks = ", ".join(["%s"] * len(chunk))
                    key_marks = ", ".join(["%s"] * len(key_chunk))
                    cursor.execute(
                        f"SELECT DISTINCT mine.case_id, other.case_id FROM {_KEYS} mine "  # noqa: S608
                        f"JOIN {_KEYS} other ON other.key = mine.key AND other.case_id <> mine.case_id "
                        f"WHERE mine.case_id IN ({case_marks}) AND mine.key IN ({key_marks})",
                        [*chunk, *key_chunk],
                    )
                    pairs.extend(cursor.fetchall())
        for mine, other in pairs:
            found[mine].add(other)
    return found


def candidate_pairs(case_ids: Sequence[int], *, threshold: float) -> list[Pair]:
    """The pairs of these cases (with any other case) that score at least ``threshold``."""
    near = neighbours(case_ids)
    records = load_records({*case_ids, *(other for others in near.values() for other in others)})
    loaded = list(records.values())
    if not loaded:
        return []
    table = Columns.of_records(loaded)
    row = {record.id: position for position, record in enumerate(loaded)}
    mine = [row[case_id] for case_id in case_ids if case_id in row for other in near.get(case_id, ()) if other in row]
    theirs = [row[other] for case_id in case_ids if case_id in row for other in near.get(case_id, ()) if other in row]
    found: dict[tuple[int, int], Pair] = {}
    for rows_a, rows_b, scores in columns.scored(
        table, np.asarray(mine, dtype=np.int64), table, np.asarray(theirs, dtype=np.int64), threshold=threshold
    ):
        for a, b, value in zip(table.ids[rows_a].tolist(), table.ids[rows_b].tolist(), scores.tolist(), strict=True):
            low, high = sorted((a, b))
            found[low, high] = Pair(low, high, value)
    return sorted(found.values(), key=lambda pair: (-pair.score, pair.a, pair.b))


def match_cases(case_ids: Sequence[int], *, now: dt.datetime | None = None) -> int:
    """Look for the candidates of these cases and keep those above the review score: new pairs are added,
    known ones get their new score, undecided ones that no longer score enough are dropped (decided ones
    stay: their decision stands). Marks the cases matched. Returns how many pairs were kept."""
    now = now or timezone.now()
    threshold = settings.LINKAGE_REVIEW_SCORE
    pairs = candidate_pairs(case_ids, threshold=threshold)
    organisations = dict(
        Case.objects.filter(pk__in={case_id for pair in pairs for case_id in (pair.a, pair.b)}).values_list(
            "pk", "organisation_id"
        )
    )
    across = [organisations[pair.a] != organisations[pair.b] for pair in pairs]
    with transaction.atomic():
        keep_pairs(case_ids, pairs, across, now=now)
    return len(pairs)


def keep_pairs(
    case_ids: Sequence[int],
    pairs: Sequence[Pair],
    across: Sequence[bool],
    *,
    now: dt.datetime,
    existing: Iterable[tuple[int, int, int, str]] | None = None,
) -> None:
    """Within the caller's transaction: the pairs found for these cases (all of them: every pair of these
    cases scoring enough) replace their undecided pairs, known pairs get their new score, and the cases are
    marked matched. ``existing``: these cases' pairs as ``existing_pairs`` gives them, when read earlier.
    On PostgreSQL a few statements over arrays, whatever the number of pairs."""
    if existing is None:
        existing = existing_pairs(case_ids)
    kept = {(pair.a, pair.b) for pair in pairs}
    gone = sorted({pk for pk, a, b, decision in existing if not decision and (a, b) not in kept})
    for chunk in _chunks(gone, _IN_CHUNK):
        Candidate.objects.filter(pk__in=chunk).delete()
    if connection.vendor == "postgresql":
        _keep_pairs_in_arrays(case_ids, pairs, across, now=now)
        return
    Candidate.objects.bulk_create(
        [
            Candidate(
                case_a_id=pair.a,
                case_b_id=pair.b,
                score=pair.score,
                across_organisations=flag,
                found_at=now,
                scored_at=now,
            )
            for pair, flag in zip(pairs, across, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["case_a", "case_b"],
        update_fields=["score", "scored_at"],
        batch_size=1000,
    )
    for chunk in _chunks(list(case_ids), _IN_CHUNK):
        CaseEncoding.objects.filter(case_id__in=chunk).update(matched_at=now)


def existing_pairs(case_ids: Sequence[int]) -> list[tuple[int, int, int, str]]:
    """The pairs of these cases: id, the two cases, the decision (empty: undecided). The decision is not
    a condition of the query: with it the planner can prefer the review queue's index and test every
    undecided pair against the list of cases (2 s for 2,000 cases against 100,000 pairs)."""
    found: list[tuple[int, int, int, str]] = []
    size = _IN_CHUNK if connection.vendor != "postgresql" else max(1, len(case_ids))
    for chunk in _chunks(list(case_ids), size):
        found.extend(
            Candidate.objects.filter(Q(case_a_id__in=chunk) | Q(case_b_id__in=chunk)).values_list(
                "pk", "case_a_id", "case_b_id", "decision"
            )
        )
    return found


_CANDIDATES = Candidate._meta.db_table
_ENCODINGS = CaseEncoding._meta.db_table


def _keep_pairs_in_arrays(
    case_ids: Sequence[int], pairs: Sequence[Pair], across: Sequence[bool], *, now: dt.datetime
) -> None:
    ids = list(case_ids)
    with connection.cursor() as cursor:
        if pairs:
            cursor.execute(
                f"INSERT INTO {_CANDIDATES} (case_a_id, case_b_id, score, across_organisations, found_at, "  # noqa: S608
                "scored_at, decision, decided_at) "
                "SELECT a, b, score, across, %s, %s, '', NULL "
                "FROM unnest(%s::int8[], %s::int8[], %s::float8[], %s::bool[]) AS k(a, b, score, across) "
                "ON CONFLICT (case_a_id, case_b_id) "
                "DO UPDATE SET score = EXCLUDED.score, scored_at = EXCLUDED.scored_at",
                [
                    now,
                    now,
                    [pair.a for pair in pairs],
                    [pair.b for pair in pairs],
                    [p.score for p in pairs],
                    list(across),
                ],
            )
        cursor.execute(f"UPDATE {_ENCODINGS} SET matched_at = %s WHERE case_id = ANY(%s)", [now, ids])  # noqa: S608


# --- jobs --------------------------------------------------------------------------


def run_job(job_id: int, *, chunk: int = JOB_CHUNK, in_bulk: bool | None = None) -> MatchJob | None:
    """Match every case waiting for its candidates, a chunk per transaction, recording progress.

    Many cases waiting (an import: ``BULK_FROM`` or more): the whole register is read once into numpy
    columns (``linkage.register``), its keys indexed once, and the waiting cases scored a chunk at a time
    against it (``match_in_bulk``). A few: the queries of ``match_cases``, a chunk at a time (reading a
    million encodings for three cases would cost more than it saves). ``in_bulk`` forces one or the other.

    Idempotent: cases already matched are not waiting any more; two jobs running at once take different
    chunks (rows locked, skipped by the other).
    """
    job = MatchJob.objects.filter(pk=job_id).first()
    if job is None or job.state == MatchJob.State.DONE:
        return job
    now = timezone.now()
    MatchJob.objects.filter(pk=job.pk).update(state=MatchJob.State.RUNNING, started_at=now, heartbeat_at=now)

    def progress(done: int, found: int) -> None:
        job.done += done
        job.found += found
        MatchJob.objects.filter(pk=job.pk).update(done=job.done, found=job.found, heartbeat_at=timezone.now())

    try:
        if in_bulk if in_bulk is not None else waiting_count() >= BULK_FROM:
            match_in_bulk(chunk=chunk, progress=progress)
        # What the bulk pass left (cases encoded or edited meanwhile), or everything when few wait.
        while True:
            with transaction.atomic():
                waiting = list(
                    CaseEncoding.objects.select_for_update(skip_locked=True)
                    .filter(matched_at__isnull=True)
                    .order_by("case_id")
                    .values_list("case_id", flat=True)[:chunk]
                )
                if not waiting:
                    break
                found = match_cases(waiting)
            progress(len(waiting), found)
    except Exception as error:
        MatchJob.objects.filter(pk=job.pk).update(
            state=MatchJob.State.FAILED, error=type(error).__name__[:100], finished_at=timezone.now()
        )
        raise
    MatchJob.objects.filter(pk=job.pk).update(
        state=MatchJob.State.DONE, done=max(job.done, job.total), finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def match_in_bulk(*, chunk: int = JOB_CHUNK, progress: Callable[[int, int], object] | None = None) -> int:
    """The candidates of every case waiting, against the whole register read at once: the pairs of
    ``candidate_pairs`` (the same keys, crowded ones left out, the same scores and threshold), kept as
    ``match_cases`` keeps them, a chunk of waiting cases per transaction. A case is kept only when it still
    waits, unchanged since the register was read, and no other job holds it; the rest is left waiting.
    Returns how many pairs were kept."""
    threshold = settings.LINKAGE_REVIEW_SCORE
    loaded = register.load()
    table, waiting = loaded.table, np.flatnonzero(loaded.waiting)
    # The waiting cases' keys (ordered by row, as all keys are), taken before the index sorts the keys.
    mine = loaded.waiting[loaded.key_rows]
    query_values, query_rows = loaded.key_values[mine], loaded.key_rows[mine]
    del mine
    index = KeyIndex.consuming(loaded.key_values, loaded.key_rows)
    loaded.key_values = loaded.key_rows = None  # type: ignore[assignment]  # the index holds what is needed
    # The waiting cases' pairs, read once before any is written (the table's statistics then still describe
    # it: read per chunk while the job writes, the planner, told the table was empty, scanned whole indexes).
    earlier: dict[int, list[tuple[int, int, int, str]]] = {}
    for row in existing_pairs(table.ids[waiting].tolist()):
        earlier.setdefault(row[1], []).append(row)
        earlier.setdefault(row[2], []).append(row)
    kept = 0
    for start in range(0, len(waiting), chunk):
        rows = waiting[start : start + chunk]
        low, high = np.searchsorted(query_rows, [rows[0], rows[-1] + 1])
        ours, theirs = index.neighbours(query_values[low:high], query_rows[low:high].astype(np.int64))
        other = ours != theirs
        found: dict[tuple[int, int], tuple[float, bool]] = {}
        for rows_a, rows_b, scores in columns.scored(table, ours[other], table, theirs[other], threshold=threshold):
            ids_a, ids_b = table.ids[rows_a], table.ids[rows_b]
            across = table.organisations[rows_a] != table.organisations[rows_b]
            lows, highs = np.minimum(ids_a, ids_b), np.maximum(ids_a, ids_b)
            for a, b, value, flag in zip(lows.tolist(), highs.tolist(), scores.tolist(), across.tolist(), strict=True):
                found[a, b] = (value, flag)
        case_ids = table.ids[rows].tolist()
        with transaction.atomic():
            taken: set[int] = set()
            for part in _chunks(case_ids, _IN_CHUNK):
                taken.update(
                    CaseEncoding.objects.select_for_update(skip_locked=True)
                    .filter(case_id__in=part, matched_at__isnull=True, encoded_at__lte=loaded.loaded_at)
                    .values_list("case_id", flat=True)
                )
            pairs = [Pair(a, b, value) for (a, b), (value, _flag) in found.items() if a in taken or b in taken]
            flags = [found[pair.a, pair.b][1] for pair in pairs]
            known = {row for case_id in taken for row in earlier.get(case_id, ())}
            keep_pairs(sorted(taken), pairs, flags, now=timezone.now(), existing=known)
        kept += len(pairs)
        if progress is not None:
            progress(len(taken), len(pairs))
    return kept


def waiting_count() -> int:
    return CaseEncoding.objects.filter(matched_at__isnull=True).count()


# --- decisions ---------------------------------------------------------------------


class PairNotFound(Exception):
    """The pair does not exist for this reader (another organisation's pair is absent, not forbidden)."""


def may_review(user: Any, candidate: Candidate) -> bool:
    """Across organisations: the host organisation's supervisors. Within one: that organisation's."""
    if candidate.across_organisations:
        return permissions.can_review_links_across(user)
    return permissions.can_review_links_within(user, candidate.case_a.organisation_id)


@dataclass(frozen=True)
class Decided:
    decision: LinkDecision
    # Within an organisation, "same child": the status change that marked the duplicate.
    duplicate: Case | None = None
    # A reversed "same child" within an organisation leaves the duplicate for a supervisor to correct.
    still_duplicate: Case | None = None


def _record(
    *,
    candidate: Candidate,
    decision: str,
    user: User | None,
    via: str,
    now: dt.datetime,
) -> LinkDecision:
    row = LinkDecision.objects.create(
        candidate=candidate,
        case_a_id=candidate.case_a_id,
        case_b_id=candidate.case_b_id,
        decision=decision,
        decided_at=now,
        decided_by=user,
        organisation_id=user.organisation_id if user is not None else None,
        decided_via=via,
        score=candidate.score,
    )
    Candidate.objects.filter(pk=candidate.pk).update(decision=decision, decided_at=now)
    candidate.decision, candidate.decided_at = decision, now
    return row


def decide(
    *,
    candidate_id: int,
    user: User,
    decision: str,
    expected: str,
    survivor_id: int | None = None,
    request: Any = None,
) -> Decided:
    """Record a reviewer's decision on a pair. ``expected``: the decision the reviewer saw (empty: none), so
    that two reviewers deciding at once do not overwrite each other unseen. Within an organisation, "same
    child" marks the case that is not ``survivor_id`` a duplicate of it through the status service.

    Raises ``PairNotFound`` (404) when the user may not review the pair, ``ValidationError`` otherwise.
    """
    if decision not in Decision.values:
        raise ValidationError({"decision": [_("Choose “Same child” or “Different children”.")]})
    with transaction.atomic():
        candidate = (
            Candidate.objects.select_for_update(of=("self",))
            .select_related("case_a", "case_b")
            .filter(pk=candidate_id)
            .first()
        )
        if candidate is None or not may_review(user, candidate):
            raise PairNotFound
        if candidate.decision != expected:
            message = _("Another reviewer decided this pair meanwhile: read their decision below, then decide.")
            raise ValidationError({NON_FIELD_ERRORS: [message]})
        if candidate.decision == decision:
            raise ValidationError({"decision": [_("The pair is already decided so.")]})
        now = timezone.now()
        duplicate = still_duplicate = None
        if not candidate.across_organisations and decision == Decision.SAME:
            duplicate = _mark_duplicate(candidate=candidate, user=user, survivor_id=survivor_id)
        elif not candidate.across_organisations:
            for case in (candidate.case_a, candidate.case_b):
                case.refresh_from_db(fields=["status"])
                if case.status == Status.DUPLICATE:
                    still_duplicate = case
        row = _record(candidate=candidate, decision=decision, user=user, via="", now=now)
        audit.log_access(
            action=AccessLog.Action.LINK,
            door=AccessLog.Door.WEB,
            organisation_id=user.organisation_id,
            case_ids=[candidate.case_a_id, candidate.case_b_id],
            user=user,
            request=request,
        )
    return Decided(decision=row, duplicate=duplicate, still_duplicate=still_duplicate)


def _mark_duplicate(*, candidate: Candidate, user: User, survivor_id: int | None) -> Case:
    if survivor_id not in (candidate.case_a_id, candidate.case_b_id):
        raise ValidationError({"survivor": [_("Choose the case that remains: the other becomes its duplicate.")]})
    survivor, duplicate = (
        (candidate.case_a, candidate.case_b)
        if survivor_id == candidate.case_a_id
        else (candidate.case_b, candidate.case_a)
    )
    duplicate.refresh_from_db()
    survivor.refresh_from_db()
    try:
        case_services.change_status(
            case=duplicate,
            actor=case_services.Actor.for_user(user),
            to_status=Status.DUPLICATE,
            occurred_on=max(timezone.localdate(), duplicate.reported_on),
            expected_version=duplicate.version,
            duplicate_of=survivor,
            note=_("Same child as %(reference)s (reviewed candidate pair).") % {"reference": survivor.reference},
        )
    except case_services.NotPermitted as refusal:
        raise ValidationError({NON_FIELD_ERRORS: [str(refusal)]}) from None
    except ValidationError as refusal:
        messages = " ".join(message for values in refusal.message_dict.values() for message in values)
        text = _("%(reference)s cannot be marked a duplicate: %(reasons)s") % {
            "reference": duplicate.reference,
            "reasons": messages,
        }
        raise ValidationError({NON_FIELD_ERRORS: [text]}) from None
    return duplicate


def decide_by_command(*, case_a: Case, case_b: Case, decision: str) -> tuple[Candidate, LinkDecision]:
    """The command line's door (``manage.py link_cases``): any two cases, compared or not. Records the
    decision as the command line's; marks no duplicate (a supervisor does that on the case page)."""
    if decision not in Decision.values:
        raise ValueError(decision)
    if case_a.pk == case_b.pk:
        raise ValidationError(_("A case cannot be linked to itself."))
    low, high = sorted((case_a, case_b), key=lambda case: case.pk)
    with transaction.atomic():
        candidate = Candidate.objects.select_for_update().filter(case_a=low, case_b=high).first()
        if candidate is None:
            pairs = [pair for pair in candidate_pairs([low.pk], threshold=0.0) if pair.b == high.pk]
            records = load_records([low.pk, high.pk]) if not pairs else {}
            score = pairs[0].score if pairs else _score_of(records, low.pk, high.pk)
            candidate = Candidate.objects.create(
                case_a=low,
                case_b=high,
                score=score,
                across_organisations=low.organisation_id != high.organisation_id,
            )
        if candidate.decision == decision:
            raise ValidationError(_("The pair is already decided so."))
        row = _record(candidate=candidate, decision=decision, user=None, via="command line", now=timezone.now())
    return candidate, row


def _score_of(records: dict[int, Record], a: int, b: int) -> float | None:
    from linkage.matching import pair_score

    if a in records and b in records:
        return pair_score(records[a], records[b])
    return None
