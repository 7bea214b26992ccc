"""The hash chains of the history and the access log: every link holds, and a change made around the app shows."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from casework import audit_chain, services
from casework.audit import log_access
from casework.models import AccessLog, AuditChainHead, StatusChange
from tests.audit_helpers import owner_execute
from tests.factories import CaseFactory


def make_history(case, supervisor, moves=("verified", "located", "return_requested")):
    day = dt.date(2023, 2, 1)
    for to_status in moves:
        services.change_status(
            case=case,
            actor=services.Actor.for_user(supervisor),
            to_status=to_status,
            occurred_on=day,
            expected_version=case.version,
            note=f"Moved to {to_status}.",
        )
        log_access(action="view", door="web", organisation_id=case.organisation_id, case_ids=[case.pk], user=supervisor)
        day += dt.timedelta(days=10)


def verify_command() -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--all", stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def test_every_row_the_application_writes_is_linked(case, supervisor, ngo_a):
    make_history(case, supervisor)
    log_access(
        action="list", door="web", organisation_id=ngo_a.pk, case_ids=[case.pk, CaseFactory(organisation=ngo_a).pk]
    )
    for model in (StatusChange, AccessLog):
        report = audit_chain.verify(model)
        assert report.intact, report.problems
        assert report.rows == model.objects.count()
        assert all(len(value) == 64 for value in model.objects.values_list("chain_hash", flat=True))
        head = AuditChainHead.objects.get(table=model._meta.db_table)
        assert head.last_hash == model.objects.order_by("-pk").values_list("chain_hash", flat=True).first()
    output, code = verify_command()
    assert code == 0 and "casework_statuschange: 3 rows, chain intact." in output


def test_a_chained_hash_depends_on_every_field_and_on_the_row_before():
    values = dict.fromkeys(audit_chain.FIELDS[AccessLog])
    values.update(at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), organisation_id=1, case_id=7, action="view", door="web")
    base = audit_chain.link(audit_chain.GENESIS, AccessLog, values)
    assert audit_chain.link("1" * 64, AccessLog, values) != base
    for name in audit_chain.FIELDS[AccessLog]:
        changed = {**values, name: "changed" if name != "at" else dt.datetime(2025, 1, 2, tzinfo=dt.UTC)}
        assert audit_chain.link(audit_chain.GENESIS, AccessLog, changed) != base, name


def test_rows_sealed_many_at_once_get_the_hashes_sealed_one_by_one():
    common = {
        "at": dt.datetime(2025, 1, 1, 12, 30, 5, 123456, tzinfo=dt.UTC),
        "user_id": 3,
        "token_id": None,
        "organisation_id": 1,
        "action": "list",
        "door": "web",
        "ip_address": "::ffff:127.0.0.1",
    }
    head = AuditChainHead(table="casework_accesslog", last_hash="a" * 64)
    case_ids = [7, None, 123456789012, 8]
    one_by_one = audit_chain.Chain(AccessLog, head)
    expected = [one_by_one.seal_values({**common, "case_id": case_id}) for case_id in case_ids]
    assert seal_many(head.last_hash, common, "case_id", case_ids) == expected
    assert one_by_one.last == expected[-1]
    # Any other field may vary too, text included.
    by_door = [audit_chain.Chain(AccessLog, head).seal_values({**common, "case_id": 7, "door": 'ap"i'})]
    assert seal_many(head.last_hash, {**common, "case_id": 7}, "door", ['ap"i']) == by_door
    with pytest.raises(ValueError):
        audit_chain.content_around(StatusChange, {}, "case_id")


def seal_many(last: str, common: dict[str, Any], name: str, values: list[Any]) -> list[str]:
    """The hashes the access log's one statement makes (casework.audit._APPEND) of rows that differ only in
    ``name``: sha256 of the previous hash, "|", and the content around the value (content_around)."""
    before, after = audit_chain.content_around(AccessLog, common, name)
    hashes = []
    for value in values:
        shown = "null" if value is None else json.dumps(value)
        last = hashlib.sha256(f"{last}|{before}{shown}{after}".encode()).hexdigest()
        hashes.append(last)
    return hashes


@pytest.mark.django_db(transaction=True)
def test_an_edit_made_around_the_application_is_found(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    second = StatusChange.objects.filter(case=case).order_by("pk")[1]
    owner_execute("UPDATE casework_statuschange SET to_status = 'repatriated' WHERE id = %s", [second.pk])
    report = audit_chain.verify(StatusChange)
    assert not report.intact
    assert report.first_broken.startswith(f"casework_statuschange id {second.pk}:")
    output, code = verify_command()
    assert code == 1 and "CHAIN BROKEN" in output and f"id {second.pk}" in output


@pytest.mark.django_db(transaction=True)
def test_a_note_changed_around_the_application_is_found(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    first = StatusChange.objects.filter(case=case).order_by("pk").first()
    owner_execute("UPDATE casework_statuschange SET note = 'Rewritten.' WHERE id = %s", [first.pk])
    report = audit_chain.verify(StatusChange)
    assert not report.intact and "the note was changed" in report.first_broken


@pytest.mark.django_db(transaction=True)
def test_a_row_removed_from_the_middle_or_the_end_is_found(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    rows = list(AccessLog.objects.order_by("pk").values_list("pk", flat=True))
    owner_execute("DELETE FROM casework_accesslog WHERE id = %s", [rows[1]])
    report = audit_chain.verify(AccessLog)
    assert not report.intact and report.first_broken.startswith(f"casework_accesslog id {rows[2]}:")
    owner_execute("DELETE FROM casework_accesslog WHERE id = %s", [rows[-1]])
    assert any("rows at the end were removed" in problem for problem in audit_chain.verify(AccessLog).problems)


@pytest.mark.django_db(transaction=True)
def test_a_row_slipped_in_around_the_application_is_found(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    owner_execute(
        "INSERT INTO casework_accesslog (at, organisation_id, case_id, action, door, chain_hash) "
        "VALUES (%s, %s, %s, 'view', 'web', '')",
        [dt.datetime(2025, 1, 1, tzinfo=dt.UTC), ngo_a.pk, case.pk],
    )
    report = audit_chain.verify(AccessLog)
    assert not report.intact and "has no link" in report.first_broken


def test_the_bulk_writers_chain_their_rows_between_the_applications(case, supervisor, ngo_a, tmp_path):
    """An import (COPY on PostgreSQL) and generated cases take their place in the chain, in id order."""
    from tests.test_import_cases import case_row, event_row, run

    make_history(case, supervisor, moves=("verified",))
    call_command("generate_cases", cases=40, organisation="synthetic-chain", seed=5, stdout=io.StringIO())
    make_history(case, supervisor, moves=("located",))
    run(
        tmp_path,
        [case_row(source_ref="CHAIN-1"), case_row(source_ref="CHAIN-2", reported_on="2023-02-01")],
        [
            event_row(source_ref="CHAIN-1", status="verified", occurred_on="2023-02-01", note="Seen in the file."),
            event_row(source_ref="CHAIN-2", status="verified", occurred_on="2023-03-01"),
        ],
    )
    make_history(case, supervisor, moves=("return_requested",))

    report = audit_chain.verify(StatusChange)
    assert report.intact, report.problems
    assert report.rows == StatusChange.objects.count() > 40
    assert StatusChange.objects.filter(chain_hash="").count() == 0
    imported = StatusChange.objects.get(case__source_ref_hash__isnull=False, note="Seen in the file.")
    assert imported.note_digest == audit_chain.note_digest("Seen in the file.")


@pytest.mark.django_db(transaction=True)
def test_every_row_removed_is_found_even_with_none_left(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    owner_execute("DELETE FROM casework_accesslog")
    report = audit_chain.verify(AccessLog)
    assert report.rows == 0 and not report.intact and "rows were removed" in report.first_broken


@pytest.mark.django_db(transaction=True)
def test_a_removed_chain_head_is_found(ngo_a, supervisor):
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    owner_execute("DELETE FROM casework_auditchainhead WHERE \"table\" = 'casework_accesslog'")
    report = audit_chain.verify(AccessLog)
    assert not report.intact and "head of the chain is missing" in report.first_broken


@pytest.mark.django_db(transaction=True)
def test_a_note_erased_on_a_case_still_open_is_found(ngo_a, supervisor):
    """The retention policy erases notes only of closed cases: an emptied note elsewhere is an edit."""
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    noted = StatusChange.objects.filter(case=case).exclude(note="").order_by("pk").first()
    assert noted is not None
    owner_execute("UPDATE casework_statuschange SET note = '' WHERE id = %s", [noted.pk])
    report = audit_chain.verify(StatusChange)
    assert not report.intact and f"case id {case.pk} was erased, but the case is not closed" in report.first_broken


@pytest.mark.django_db(transaction=True)
def test_a_chain_rewritten_and_recomputed_is_caught_by_a_link_recorded_elsewhere(ngo_a, supervisor):
    """The owner (or a database superuser) may change a row and recompute every later link and the head: the
    chain then verifies, but the last link printed by an earlier run, kept outside the database, no longer holds."""
    case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 1, 10))
    make_history(case, supervisor)
    output, code = verify_command()
    assert code == 0
    marker = "last link: casework_accesslog"
    recorded = next(line.split("last link: ")[1] for line in output.splitlines() if marker in line)
    table, row_id, link = recorded.split(":")
    assert table == "casework_accesslog" and len(link) == 64

    # Rewrite the first row and recompute the whole chain from it, as an attacker with the owner's rights would.
    rows = list(AccessLog.objects.order_by("pk"))
    owner_execute("UPDATE casework_accesslog SET ip_address = '203.0.113.9' WHERE id = %s", [rows[0].pk])
    previous = audit_chain.GENESIS
    for row in AccessLog.objects.order_by("pk"):
        values = {name: getattr(row, name) for name in audit_chain.FIELDS[AccessLog]}
        values["ip_address"] = audit_chain.normal_address(values["ip_address"])
        previous = audit_chain.link(previous, AccessLog, values)
        owner_execute("UPDATE casework_accesslog SET chain_hash = %s WHERE id = %s", [previous, row.pk])
    head = 'UPDATE casework_auditchainhead SET last_hash = %s WHERE "table" = %s'
    owner_execute(head, [previous, "casework_accesslog"])
    assert audit_chain.verify(AccessLog).intact  # the forgery holds on its own ...

    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("verify_audit", "--expect", recorded, stdout=out)
    assert refused.value.returncode == 1  # ... but not against the link recorded before it
    assert "RECORDED LINK BROKEN" in out.getvalue() and f"id {row_id}" in out.getvalue()


def test_a_recorded_link_in_the_wrong_form_is_refused(db):
    with pytest.raises(CommandError, match="TABLE:ID:HASH"):
        call_command("verify_audit", "--expect", "casework_accesslog:12:xyz", stdout=io.StringIO())
