"""The demo register (``manage.py seed_demo``): exactly 20,000 children reported and 1,189 repatriated on
2 February 2025, and a history that goes on up to the day before the demo is loaded.

Synthetic: invented organisations, institutions, people and cases.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organisation, Role, User
from casework import followups
from casework.models import (
    Case,
    Institution,
    Oblast,
    StatusChange,
)
from casework.references import new_references
from casework.task_models import Notice, Task
from devdata.demo_linkage import PlantedLinks, plant_links
from devdata.generator import (
    _PATH,
    _REPATRIATED_AT,
    _RETURNED,
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
    _weighted_sample,
)
from devdata.lists import seed_demo_lists
from devdata.writing import _taken_references, _write_with_orm

# --- the demo's fixed figures (DESIGN.md section 4) -------------------------

DEMO_AS_OF = dt.date(2025, 2, 2)
DEMO_REPORTED = 20_000
DEMO_REPATRIATED = 1_189
DEMO_NGO_B_CASES = 500
DEMO_DUPLICATES = 412
DEMO_WITHDRAWN = 173
DEMO_SEED = 2025

# NGO A hosts the demo register: its users see the exact register-wide figures (NGO B's see their own).
DEMO_HOST = "ngo-a"
DEMO_ORGANISATIONS: tuple[tuple[str, str, str], ...] = (
    ("ngo-a", "NGO A (synthetic demo)", "ГО А (синтетичні демодані)"),
    ("ngo-b", "NGO B (synthetic demo)", "ГО Б (синтетичні демодані)"),
)
DEMO_INSTITUTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "crimea-01",
        "Children's home No. 1 (synthetic)",
        "Дитячий будинок № 1 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-02",
        "Boarding school No. 2 (synthetic)",
        "Школа-інтернат № 2 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-03",
        "Children's home No. 3 (synthetic)",
        "Дитячий будинок № 3 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-04",
        "Health camp A (synthetic)",
        "Оздоровчий табір А (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-05",
        "Cadet school No. 1 (synthetic)",
        "Кадетська школа № 1 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-06",
        "Rehabilitation centre No. 1 (synthetic)",
        "Реабілітаційний центр № 1 (синтетичний)",
        Institution.Kind.HOSPITAL,
    ),
    (
        "crimea-07",
        "Sanatorium B (synthetic)",
        "Санаторій Б (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-08",
        "Social shelter No. 4 (synthetic)",
        "Соціальний притулок № 4 (синтетичний)",
        Institution.Kind.OTHER,
    ),
    (
        "crimea-09",
        "Boarding school No. 5 (synthetic)",
        "Школа-інтернат № 5 (синтетична)",
        Institution.Kind.BOARDING_SCHOOL,
    ),
    (
        "crimea-10",
        "Children's home No. 6 (synthetic)",
        "Дитячий будинок № 6 (синтетичний)",
        Institution.Kind.ORPHANAGE,
    ),
    (
        "crimea-11",
        "Children's hospital ward (synthetic)",
        "Дитяче лікарняне відділення (синтетичне)",
        Institution.Kind.HOSPITAL,
    ),
    (
        "crimea-12",
        "Summer camp C (synthetic)",
        "Літній табір В (синтетичний)",
        Institution.Kind.CAMP,
    ),
    (
        "crimea-13",
        "Family-type home No. 2 (synthetic)",
        "Будинок сімейного типу № 2 (синтетичний)",
        Institution.Kind.OTHER,
    ),
)
# (username, role, organisation slug, superuser)
DEMO_USERS: tuple[tuple[str, str, str, bool], ...] = (
    ("caseworker", Role.CASEWORKER, "ngo-a", False),
    ("supervisor", Role.SUPERVISOR, "ngo-a", False),
    ("analyst", Role.ANALYST, "ngo-a", False),
    ("orgadmin", Role.ORG_ADMIN, "ngo-a", False),
    ("caseworker-b", Role.CASEWORKER, "ngo-b", False),
    ("admin", Role.ORG_ADMIN, "ngo-a", True),
)


# --- seed_demo ---------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    organisation: str
    is_superuser: bool


@dataclass
class DemoResult:
    logins: list[Login]
    password: str | None  # None: the demo was loaded before and its passwords were kept
    password_generated: bool
    password_warnings: list[str]
    created: bool
    cases: int  # written by this run
    existing_cases: int  # already held by the demo organisations, when nothing was written
    changes: int
    reported: int
    repatriated: int
    seconds: float
    links: PlantedLinks


def demo_case_count() -> int:
    """Cases the demo organisations hold: any at all means the demo data is loaded."""
    return Case.objects.filter(organisation__slug__in=[slug for slug, _name, _name_uk in DEMO_ORGANISATIONS]).count()


def _ensure_organisations() -> tuple[dict[str, Organisation], dict[str, Organisation]]:
    ngos = {}
    for slug, name, name_uk in DEMO_ORGANISATIONS:
        if slug == DEMO_HOST:  # one host at most: any other organisation marked so is unmarked first
            Organisation.objects.filter(is_host=True).exclude(slug=slug).update(is_host=False)
        ngos[slug], _created = Organisation.objects.update_or_create(
            slug=slug,
            defaults={"name": name, "name_uk": name_uk, "kind": Organisation.Kind.NGO, "is_host": slug == DEMO_HOST},
        )
    vias = {}
    for slug, name, name_uk in INTERMEDIARIES:
        vias[slug], _created = Organisation.objects.get_or_create(
            slug=slug, defaults={"name": name, "name_uk": name_uk, "kind": Organisation.Kind.INTERMEDIARY}
        )
    return ngos, vias


def _ensure_institutions() -> list[Institution]:
    institutions = []
    for code, name, name_uk, kind in DEMO_INSTITUTIONS:
        institution, _created = Institution.objects.update_or_create(
            code=code, defaults={"name": name, "name_uk": name_uk, "region": Oblast.CRIMEA.value, "kind": kind}
        )
        institutions.append(institution)
    return institutions


def _ensure_users(ngos: Mapping[str, Organisation], password: str | None) -> dict[str, User]:
    """The demo users, with ``password`` when given (new users without one cannot sign in)."""
    users = {}
    for username, role, organisation, is_superuser in DEMO_USERS:
        user, created = User.objects.update_or_create(
            username=username,
            defaults={
                "organisation": ngos[organisation],
                "role": role,
                "is_staff": is_superuser,
                "is_superuser": is_superuser,
                "is_active": True,
                # A reserved domain (RFC 2606): the demo's reset mail goes to its console, never out.
                "email": f"{username}@{organisation}.example",
            },
        )
        if password is not None:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        users[username] = user
    return users


def _final_status_by_age(rng: random.Random, days: int) -> str:
    """The status a case not yet returned has reached: older reports have moved further."""
    table: tuple[tuple[str, int], ...]
    if days < 21:
        table = ((REPORTED, 75), (VERIFIED, 25))
    elif days < 120:
        table = ((REPORTED, 45), (VERIFIED, 35), (LOCATED, 20))
    else:
        table = ((REPORTED, 25), (VERIFIED, 30), (LOCATED, 28), (RETURN_REQUESTED, 17))
    return rng.choices([status for status, _w in table], weights=[weight for _s, weight in table])[0]


def build_demo_cases(
    rng: random.Random,
    *,
    ngos: Mapping[str, Organisation],
    users: Mapping[str, User],
    vias: Mapping[str, Organisation],
    institutions: Sequence[Institution],
) -> list[CaseSpec]:
    """The demo's cases and histories, in memory: exactly the figures of DESIGN.md section 4 on DEMO_AS_OF."""
    end = DEMO_AS_OF
    generator = _Generator(rng, today=DEMO_AS_OF, vias=vias, institutions=institutions, check=True)
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    recorders = _demo_recorders(ngos, users)
    report_days = _report_days(FIRST_REPORT, dt.date(2025, 1, 31))

    # Cases counted in the figures: their final status is on the main path.
    counted = []
    in_ngo_b = set(rng.sample(range(DEMO_REPORTED), DEMO_NGO_B_CASES))
    for index in range(DEMO_REPORTED):
        organisation = ngo_b if index in in_ngo_b else ngo_a
        counted.append(
            generator.case(
                organisation_id=organisation, reported_on=report_days.pick(rng), recorders=recorders[organisation]
            )
        )

    def age(case: CaseSpec) -> int:
        return (end - case.reported_on).days

    returnable = [case for case in counted if age(case) >= 60]
    returned = set(_weighted_sample(rng, returnable, lambda case: float(age(case)), DEMO_REPATRIATED))
    final: dict[CaseSpec, str] = {}
    for case in counted:
        if case in returned:
            final[case] = REUNIFIED if rng.random() < 0.35 else REPATRIATED
        else:
            final[case] = _final_status_by_age(rng, age(case))

    twists: dict[CaseSpec, str] = {}

    def choose(candidates: list[CaseSpec], k: int, twist: str) -> None:
        free = [case for case in candidates if case not in twists]
        for case in rng.sample(free, k):
            twists[case] = twist

    a_returned = [case for case in counted if case in returned and case.organisation_id == ngo_a]
    a_open = [case for case in counted if case not in returned and case.organisation_id == ngo_a]
    choose(a_returned, 25, FALSE_RETURN)
    choose([case for case in a_returned if final[case] == REPATRIATED], 15, REUNIFICATION_CORRECTED)
    choose([case for case in a_open if final[case] in {LOCATED, RETURN_REQUESTED}], 90, FALSE_RETURN)
    choose(a_open, 150, VERIFICATION_CORRECTED)
    choose(a_open, 24, REOPENED_DUPLICATE)
    choose(a_open, 18, REOPENED_WITHDRAWAL)

    # Surviving cases named by duplicates are never duplicates themselves.
    survivors = [case for case in counted if case.organisation_id == ngo_a and twists.get(case) != REOPENED_DUPLICATE]

    def survivor_for(case: CaseSpec) -> CaseSpec:
        for _attempt in range(20):
            survivor = rng.choice(survivors)
            if survivor is not case and survivor.reported_on <= case.reported_on:
                return survivor
        return next(s for s in survivors if s is not case)

    for case in counted:
        twist = twists.get(case, PLAIN)
        generator.history(
            case,
            final=final[case],
            end=end,
            recorders=recorders[case.organisation_id],
            twist=twist,
            survivor=survivor_for(case) if twist == REOPENED_DUPLICATE else None,
        )

    # Cases that are not counted: duplicates of a surviving case, and withdrawn reports.
    extra = []
    for _index in range(DEMO_DUPLICATES):
        survivor = rng.choice(survivors)
        latest = min(survivor.reported_on + dt.timedelta(days=365), end - dt.timedelta(days=1))
        reported_on = survivor.reported_on + dt.timedelta(days=rng.randint(0, (latest - survivor.reported_on).days))
        case = generator.case(organisation_id=ngo_a, reported_on=reported_on, recorders=recorders[ngo_a])
        # The same child reported again: the same description.
        case.sex, case.birth_year, case.oblast = survivor.sex, survivor.birth_year, survivor.oblast
        generator.history(case, final=DUPLICATE, end=end, recorders=recorders[ngo_a], survivor=survivor)
        extra.append(case)
    for _index in range(DEMO_WITHDRAWN):
        case = generator.case(organisation_id=ngo_a, reported_on=report_days.pick(rng), recorders=recorders[ngo_a])
        generator.history(case, final=WITHDRAWN, end=end, recorders=recorders[ngo_a])
        extra.append(case)

    cases = counted + extra
    reported, repatriated = demo_figures(cases)
    if (reported, repatriated) != (DEMO_REPORTED, DEMO_REPATRIATED):
        raise RuntimeError(f"The demo plan gives {reported} reported and {repatriated} repatriated")
    # Cases enter the register in the order they were reported.
    cases.sort(key=lambda case: case.created_at)
    return cases


def _demo_recorders(ngos: Mapping[str, Organisation], users: Mapping[str, User]) -> dict[int, Recorders]:
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    return {
        ngo_a: Recorders(
            forward=(users["caseworker"].pk,) * 4 + (users["supervisor"].pk,),
            supervisors=(users["supervisor"].pk,),
            assignees=(users["caseworker"].pk,),
        ),
        # NGO B has no supervisor: its histories only move forward.
        ngo_b: Recorders(forward=(users["caseworker-b"].pk,), assignees=(users["caseworker-b"].pk,)),
    }


# After DEMO_AS_OF the register goes on, so that its pages look like a live register's
# on the day the demo is loaded: new reports, and open cases moving on (recent moves
# more often than old ones). Everything is dated after DEMO_AS_OF, so the figures as
# of that day stay exactly DEMO_REPORTED and DEMO_REPATRIATED.
DEMO_NEW_CASES_PER_MONTH = 110
DEMO_SHARE_MOVING_ON = 0.6  # of the cases open on DEMO_AS_OF
DEMO_MEAN_DAYS_SINCE_MOVE = 110
DEMO_RETURN_SHARE = 0.12  # of the moving cases, the ones that come home


def continue_demo(
    rng: random.Random,
    cases: Sequence[CaseSpec],
    *,
    today: dt.date,
    ngos: Mapping[str, Organisation],
    users: Mapping[str, User],
    vias: Mapping[str, Organisation],
    institutions: Sequence[Institution],
) -> list[CaseSpec]:
    """Move the demo's open cases on and add new reports from the day after DEMO_AS_OF up to yesterday.

    ``cases`` gain their later moves in place; the new cases are returned.
    """
    first, last = DEMO_AS_OF + dt.timedelta(days=1), today - dt.timedelta(days=1)
    if last < first:
        return []
    generator = _Generator(rng, today=today, vias=vias, institutions=institutions, check=True)
    recorders = _demo_recorders(ngos, users)
    span = (last - first).days

    def recent_day(earliest: dt.date) -> dt.date | None:
        """A day after ``earliest``, more often recent than not (work on a case comes in bursts)."""
        if earliest > last:
            return None
        back = min(int(rng.expovariate(1 / DEMO_MEAN_DAYS_SINCE_MOVE)), (last - earliest).days)
        return last - dt.timedelta(days=back)

    for case in cases:
        status = case.status
        if status in _SIDE or status == REUNIFIED or rng.random() >= DEMO_SHARE_MOVING_ON:
            continue
        at = _PATH.index(status)
        if status == REPATRIATED:
            target = _PATH.index(REUNIFIED)
        elif rng.random() < DEMO_RETURN_SHARE:
            target = _REPATRIATED_AT
        else:
            target = min(at + rng.choice((1, 1, 2)), _REPATRIATED_AT - 1)
        if target <= at:
            continue
        steps = generator._forward(at, target)
        earliest = max(first, case.changes[-1].occurred_on if case.changes else case.reported_on)
        days = sorted(day for day in (recent_day(earliest) for _step in steps) if day is not None)
        if len(days) != len(steps):
            continue
        returned = status in _RETURNED
        for step, day in zip(steps, days, strict=True):
            step.occurred_on = day
            if (step.to in _RETURNED and not returned) or (step.to == RETURN_REQUESTED and rng.random() < 0.5):
                step.via_slug = generator._pick_return_via(day)
            returned = returned or step.to in _RETURNED
        generator.record(case, steps, recorders=recorders[case.organisation_id])

    added = []
    ngo_a, ngo_b = ngos["ngo-a"].pk, ngos["ngo-b"].pk
    for _index in range(int(span / 30.4 * DEMO_NEW_CASES_PER_MONTH)):
        organisation = ngo_b if rng.random() < DEMO_NGO_B_CASES / DEMO_REPORTED else ngo_a
        reported_on = first + dt.timedelta(days=int(rng.random() * (span + 1)))
        case = generator.case(organisation_id=organisation, reported_on=reported_on, recorders=recorders[organisation])
        age = (last - reported_on).days
        final = REPATRIATED if age >= 60 and rng.random() < 0.04 else _final_status_by_age(rng, age)
        generator.history(case, final=final, end=last, recorders=recorders[organisation])
        added.append(case)
    return added


# The demo's follow-ups: what the organisations' rules would have asked over the last weeks (older
# ones were dealt with before the register had follow-ups), most of it done, some of it overdue.
DEMO_FOLLOW_UP_DAYS = 45
DEMO_DONE_SHARE = 0.8  # of the follow-ups that fell due more than a week ago


def seed_follow_ups(ngos: Mapping[str, Organisation], *, today: dt.date) -> int:
    """Follow-ups for the demo organisations that have none yet (a second run adds nothing). Returns how many."""
    rng = random.Random(DEMO_SEED + 1)  # noqa: S311 (reproducible synthetic data, no secret)
    made = 0
    now = timezone.now()
    for organisation in ngos.values():
        if Task.objects.filter(case__organisation=organisation).exists():
            continue
        made += followups.backfill_rules(
            organisation_id=organisation.pk, since=today - dt.timedelta(days=DEMO_FOLLOW_UP_DAYS)
        )
        past = Task.objects.filter(
            case__organisation=organisation, state=Task.State.OPEN, due_on__lt=today - dt.timedelta(days=7)
        ).order_by("pk")
        done = [pk for pk in past.values_list("pk", flat=True) if rng.random() < DEMO_DONE_SHARE]
        Task.objects.filter(pk__in=done).update(state=Task.State.DONE, done_at=now, done_by=F("assigned_to"))
        _seed_notices(organisation, now=now)
    return made


DEMO_NOTICES = 12


def _seed_notices(organisation: Organisation, *, now: dt.datetime) -> None:
    """The notices the assignees would have had of the latest moves others made on their cases."""
    changes = (
        StatusChange.objects.filter(case__organisation=organisation, case__assigned_to__isnull=False)
        .exclude(recorded_by=F("case__assigned_to"))
        .select_related("case", "recorded_by")
        .order_by("-recorded_at", "-id")[:DEMO_NOTICES]
    )
    notices = [
        Notice(
            user_id=change.case.assigned_to_id,
            kind=Notice.Kind.STATUS_CHANGED,
            case=change.case,
            status=change.to_status,
            by=change.recorded_by.get_username() if change.recorded_by else change.recorded_via,
        )
        for change in changes
    ]
    Notice.objects.bulk_create(notices)
    for user_id in {notice.user_id for notice in notices}:
        User.objects.filter(pk=user_id).update(unread_notices=sum(1 for n in notices if n.user_id == user_id))


def demo_figures(cases: Iterable[CaseSpec]) -> tuple[int, int]:
    """Reported and repatriated on DEMO_AS_OF, when nothing in ``cases`` is dated later."""
    reported = repatriated = 0
    for case in cases:
        if case.status in _SIDE:
            continue
        reported += 1
        repatriated += case.status in _RETURNED
    return reported, repatriated


def seed_demo(*, password: str | None = None, today: dt.date | None = None) -> DemoResult:
    """Create the demo organisations, institutions, users and cases, unless they exist.

    The cases' histories reach DEMO_AS_OF with exactly the demo's figures, and go
    on after it up to the day before ``today``. When the data exists, nothing is
    added and the demo users keep their passwords, unless ``password`` is given.
    """
    started = time.perf_counter()
    today = today or timezone.localdate()
    existing = demo_case_count()
    created = existing == 0
    generated = password is None and created
    if generated:
        password = secrets.token_urlsafe(18)
    warnings: list[str] = []
    if password is not None and not generated:
        try:
            validate_password(password)
        except ValidationError as exc:
            warnings = list(exc.messages)
    changes = cases = 0
    with transaction.atomic():
        ngos, vias = _ensure_organisations()
        institutions = _ensure_institutions()
        users = _ensure_users(ngos, password)
        if created:
            rng = random.Random(DEMO_SEED)  # noqa: S311 (reproducible synthetic data, no secret)
            specs = build_demo_cases(rng, ngos=ngos, users=users, vias=vias, institutions=institutions)
            specs += continue_demo(
                rng, specs, today=today, ngos=ngos, users=users, vias=vias, institutions=institutions
            )
            specs.sort(key=lambda case: case.created_at)
            references = new_references(len(specs), taken=_taken_references)
            changes = _write_with_orm(specs, references, vias, changes_in_recording_order=True)
            cases = len(specs)
            seed_demo_lists(ngos=ngos, vias=vias, today=today)
        seed_follow_ups(ngos, today=today)
        # Children reported twice, for the review queues (once: a later run finds them planted).
        links = plant_links(as_of=DEMO_AS_OF)
    return DemoResult(
        logins=[
            Login(username=username, role=role, organisation=organisation, is_superuser=is_superuser)
            for username, role, organisation, is_superuser in DEMO_USERS
        ],
        password=password,
        password_generated=generated,
        password_warnings=warnings,
        created=created,
        cases=cases,
        existing_cases=existing,
        changes=changes,
        reported=DEMO_REPORTED,
        repatriated=DEMO_REPATRIATED,
        seconds=time.perf_counter() - started,
        links=links,
    )
