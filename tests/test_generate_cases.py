"""``manage.py generate_cases``: synthetic cases at scale, with valid histories.

On SQLite this exercises bulk_create; with DATABASE_URL pointing at
PostgreSQL, the COPY stream.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from accounts.models import Organisation, User
from casework.models import Case, StatusChange
from casework.references import REFERENCE_RE
from devdata import writing
from tests.test_seed_demo import replay_errors


def generate(**options: object) -> str:
    out = io.StringIO()
    call_command("generate_cases", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def test_it_creates_a_missing_organisation_and_its_cases(db: None) -> None:
    output = generate(cases=200, organisation="synthetic-bench", seed=11)

    organisation = Organisation.objects.get(slug="synthetic-bench")
    assert organisation.kind == Organisation.Kind.NGO
    assert "synthetic" in organisation.name
    cases = Case.objects.filter(organisation=organisation)
    assert cases.count() == 200
    changes = StatusChange.objects.filter(case__organisation=organisation).count()
    assert 2.5 <= changes / 200 <= 4.5
    assert "Generated 200 synthetic cases" in output
    assert f"{changes} status changes" in output
    assert "(created)" in output


def test_it_writes_histories_the_status_machine_accepts(db: None) -> None:
    generate(cases=200, organisation="synthetic-bench", seed=12)

    errors = list(replay_errors(today=timezone.localdate()))
    assert errors == [], "\n".join(errors[:20])


def test_it_writes_the_variety_of_real_histories(db: None) -> None:
    generate(cases=200, organisation="synthetic-bench", seed=13)

    changes = StatusChange.objects.all()
    statuses = set(Case.objects.values_list("status", flat=True))
    assert {"reported", "verified", "located", "return_requested", "repatriated", "reunified"} <= statuses
    returns = changes.filter(to_status__in=["repatriated", "reunified"]).exclude(
        from_status__in=["repatriated", "reunified"]
    )
    assert set(returns.exclude(via=None).values_list("via__slug", flat=True)) == {"qatar", "vatican", "south-africa"}
    assert returns.filter(via=None).exists()
    assert changes.filter(is_correction=True).exists()
    assert changes.filter(to_status="duplicate").exclude(duplicate_of=None).exists()
    years = {day.year for day in Case.objects.values_list("reported_on", flat=True)}
    assert years == {2022, 2023, 2024, 2025}
    references = list(Case.objects.values_list("reference", flat=True))
    assert all(REFERENCE_RE.match(reference) for reference in references)


def test_it_keeps_every_case_consistent_with_its_history(db: None) -> None:
    generate(cases=200, organisation="synthetic-bench", seed=14)

    counted = Case.objects.annotate(changes=Count("status_changes"))
    for case in counted:
        assert case.version == 1 + case.changes, case.reference
        last = case.status_changes.order_by("occurred_on", "id").last()
        assert case.status == (last.to_status if last else "reported"), case.reference
        assert case.last_change_at == (last.recorded_at if last else None), case.reference
        assert case.created_at <= (last.recorded_at if last else timezone.now())


def test_it_adds_to_an_existing_organisation_and_its_staff(
    ngo_a: Organisation, caseworker: User, supervisor: User
) -> None:
    generate(cases=50, organisation="ngo-a", seed=15)
    generate(cases=30, organisation="ngo-a", seed=16)

    assert Organisation.objects.filter(slug="ngo-a").count() == 1
    assert Case.objects.filter(organisation=ngo_a).count() == 80
    assert len(set(Case.objects.values_list("reference", flat=True))) == 80
    changes = StatusChange.objects.filter(case__organisation=ngo_a)
    assert set(changes.values_list("recorded_by", flat=True)) <= {caseworker.pk, supervisor.pk}
    # Corrections and side moves are a supervisor's to make.
    assert set(changes.filter(is_correction=True).values_list("recorded_by", flat=True)) <= {supervisor.pk}
    assert set(Case.objects.values_list("assigned_to", flat=True)) <= {caseworker.pk, None}
    assert list(replay_errors(today=timezone.localdate())) == []


def test_it_repeats_a_run_from_its_seed(db: None) -> None:
    generate(cases=40, organisation="first", seed=99)
    generate(cases=40, organisation="second", seed=99)

    fields = ("sex", "birth_year", "oblast", "reported_on", "placement", "status", "version")

    def shape(slug: str) -> list[tuple[object, ...]]:
        return list(Case.objects.filter(organisation__slug=slug).order_by("id").values_list(*fields))

    assert shape("first") == shape("second")
    assert not set(Case.objects.filter(organisation__slug="first").values_list("reference", flat=True)) & set(
        Case.objects.filter(organisation__slug="second").values_list("reference", flat=True)
    )


def test_it_can_check_every_move_as_it_generates(db: None) -> None:
    generate(cases=50, organisation="checked", seed=17, check_moves=True)

    assert Case.objects.filter(organisation__slug="checked").count() == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cases": 10, "organisation": "not a slug"}, "not a slug"),
        ({"cases": 0, "organisation": "ngo-z"}, "not a whole number of at least 1"),
    ],
)
def test_it_refuses_bad_arguments(db: None, options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("generate_cases", *[f"--{k}={v}" for k, v in options.items()], stdout=io.StringIO())
    assert not Case.objects.exists()


def test_it_never_reuses_a_reference(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    real = writing._random_references
    rigged: list[int] = []

    def first_draw_collides(count: int) -> set[str]:
        references = real(count)
        if not rigged:
            rigged.append(count)
            references = {*sorted(references)[: count - 1], case.reference}
        return references

    monkeypatch.setattr(writing, "_random_references", first_draw_collides)
    generate(cases=5, organisation=case.organisation.slug, seed=18)

    assert rigged
    references = list(Case.objects.values_list("reference", flat=True))
    assert len(references) == 6 == len(set(references))
