"""Synthetic data at scale (``manage.py generate_cases``): a million cases in minutes, for the benchmarks."""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Organisation, Role, User
from casework import audit_chain, bulk
from casework.models import (
    Case,
    Institution,
    StatusChange,
)
from devdata.generator import (
    _LOCATED_AT,
    _PATH,
    _SIDE,
    DUPLICATE,
    FALSE_RETURN,
    FIRST_REPORT,
    INTERMEDIARIES,
    LOCATED,
    PLAIN,
    REOPENED_DUPLICATE,
    REOPENED_WITHDRAWAL,
    REPATRIATED,
    REPORTED,
    RETURN_REQUESTED,
    REUNIFICATION_CORRECTED,
    REUNIFIED,
    VERIFICATION_CORRECTED,
    VERIFIED,
    WITHDRAWN,
    CaseSpec,
    Recorders,
    _Generator,
    _report_days,
    _Weighted,
)
from devdata.writing import (
    _CopyFormatter,
    _CopyStream,
    _random_references_exactly,
    _write_with_orm,
    fresh_references,
)

# --- generate_cases ----------------------------------------------------------

GENERATE_END = dt.date(2025, 12, 31)
GENERATE_CHUNK = 10_000
# Final statuses of generated cases, weighted so that a case has about 3.5 changes.
_GENERATED_FINALS = _Weighted(
    [
        (REPORTED, 2),
        (VERIFIED, 4),
        (LOCATED, 8),
        (RETURN_REQUESTED, 16),
        (REPATRIATED, 28),
        (REUNIFIED, 33),
        (DUPLICATE, 4),
        (WITHDRAWN, 4),
    ]
)
_GENERATED_TWISTS = _Weighted(
    [
        (PLAIN, 92),
        (VERIFICATION_CORRECTED, 2.5),
        (FALSE_RETURN, 3),
        (REOPENED_DUPLICATE, 1),
        (REOPENED_WITHDRAWAL, 1),
        (REUNIFICATION_CORRECTED, 0.5),
    ]
)


@dataclass
class GenerateResult:
    organisation: Organisation
    organisation_created: bool
    cases: int
    changes: int
    seed: int
    seconds: float
    method: str


def _recorders_for(organisation: Organisation) -> Recorders:
    staff = list(
        User.objects.filter(organisation=organisation, is_active=True, role__in=[Role.CASEWORKER, Role.SUPERVISOR])
        .order_by("pk")
        .values_list("pk", "role")[:50]
    )
    caseworkers = tuple(pk for pk, role in staff if role == Role.CASEWORKER)
    supervisors = tuple(pk for pk, role in staff if role == Role.SUPERVISOR)
    return Recorders(forward=caseworkers + supervisors, supervisors=supervisors, assignees=caseworkers)


def _generated_chunk(
    generator: _Generator,
    *,
    count: int,
    organisation_id: int,
    recorders: Recorders,
    report_days: _Weighted[dt.date],
    end: dt.date,
) -> list[CaseSpec]:
    rng = generator.rng
    specs: list[CaseSpec] = []
    survivors: list[CaseSpec] = []
    for _index in range(count):
        case = generator.case(organisation_id=organisation_id, reported_on=report_days.pick(rng), recorders=recorders)
        final = _GENERATED_FINALS.pick(rng)
        twist = _GENERATED_TWISTS.pick(rng)
        target = _PATH.index(final) if final not in _SIDE else -1
        if (
            final in _SIDE
            or (twist == FALSE_RETURN and target < _LOCATED_AT)
            or (twist == REUNIFICATION_CORRECTED and final != REPATRIATED)
        ):
            twist = PLAIN
        survivor = rng.choice(survivors) if survivors and (twist == REOPENED_DUPLICATE or final == DUPLICATE) else None
        if survivor is None and twist == REOPENED_DUPLICATE:
            twist = PLAIN
        if survivor is None and final == DUPLICATE:
            final = WITHDRAWN
        generator.history(case, final=final, end=end, recorders=recorders, twist=twist, survivor=survivor)
        if final not in _SIDE and twist != REOPENED_DUPLICATE and len(survivors) < 1000:
            survivors.append(case)
        specs.append(case)
    return specs


def generate_cases(
    *,
    cases: int,
    organisation_slug: str,
    seed: int | None = None,
    check: bool = False,
    progress: Callable[[int], object] | None = None,
    chunk_size: int = GENERATE_CHUNK,
) -> GenerateResult:
    """Add ``cases`` synthetic cases with histories to an organisation (created if missing), in one transaction.

    On PostgreSQL, rows are streamed with COPY from a worker thread while the
    next chunk is generated; elsewhere they are written with bulk_create.
    Histories are built by the same generator as the demo's, whose every move
    is checked; ``check`` runs this run's moves through ``check_move`` too,
    at about twice the cost.
    """
    started = time.perf_counter()
    if seed is None:
        seed = secrets.randbits(32)
    rng = random.Random(seed)  # noqa: S311 (reproducible synthetic data, no secret)
    today = timezone.localdate()
    end = min(GENERATE_END, today)
    report_days = _report_days(FIRST_REPORT, max(FIRST_REPORT, end - dt.timedelta(days=30)))
    use_copy = connection.vendor == "postgresql"
    written_changes = 0
    with transaction.atomic():
        organisation, created = Organisation.objects.get_or_create(
            slug=organisation_slug,
            defaults={"name": f"{organisation_slug} (synthetic data)", "kind": Organisation.Kind.NGO},
        )
        vias = {
            o.slug: o
            for o in Organisation.objects.filter(
                kind=Organisation.Kind.INTERMEDIARY, slug__in=[slug for slug, _name, _name_uk in INTERMEDIARIES]
            )
        }
        generator = _Generator(
            rng, today=today, vias=vias, institutions=list(Institution.objects.all()[:1000]), check=check, skip=0.1
        )
        recorders = _recorders_for(organisation)

        def chunks() -> Iterator[list[CaseSpec]]:
            for start in range(0, cases, chunk_size):
                yield _generated_chunk(
                    generator,
                    count=min(chunk_size, cases - start),
                    organisation_id=organisation.pk,
                    recorders=recorders,
                    report_days=report_days,
                    end=end,
                )

        if use_copy:
            pg = cast("psycopg.Connection[Any]", connection.cursor().connection)
            # The history's chain is held for the whole write: the rows are chained in the order COPY inserts them.
            with audit_chain.appending(StatusChange) as chain:
                with pg.cursor() as pg_cursor:
                    formatter = _CopyFormatter(bulk.reserve_ids(Case, cases, cursor=pg_cursor), vias, chain)
                    # Foreign keys are checked as each COPY ends, while the next chunk is
                    # generated, rather than all at once at commit, when nothing else runs.
                    foreign_keys = bulk.deferred_foreign_keys(pg_cursor, [Case, StatusChange])
                    bulk.set_constraints(pg_cursor, foreign_keys, "IMMEDIATE")
                with _CopyStream(pg) as stream:
                    for specs in chunks():
                        # The worker swaps any reference already taken for a fresh one.
                        stream.send(formatter.chunk(specs, list(_random_references_exactly(len(specs)))))
                        written_changes += sum(len(spec.changes) for spec in specs)
                        if progress is not None:
                            progress(len(specs))
            with pg.cursor() as pg_cursor:
                bulk.set_constraints(pg_cursor, foreign_keys, "DEFERRED")
            with connection.cursor() as cursor:
                # Fresh statistics, so the next queries are planned for the tables' new size.
                cursor.execute(f"ANALYZE {Case._meta.db_table}, {StatusChange._meta.db_table}")
        else:
            for specs in chunks():
                # Earlier chunks are already in the table, so the check covers them too.
                written_changes += _write_with_orm(specs, fresh_references(len(specs)), vias)
                if progress is not None:
                    progress(len(specs))
    return GenerateResult(
        organisation=organisation,
        organisation_created=created,
        cases=cases,
        changes=written_changes,
        seed=seed,
        seconds=time.perf_counter() - started,
        method="COPY" if use_copy else "bulk_create",
    )
