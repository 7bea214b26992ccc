"""The admin confined: staff who are not superusers see and change only their own organisation's objects.

Generated over every registered admin model: as staff of NGO A (every model
permission, second factor passed) with objects of both NGO A and NGO B, each
model's list, change, add and delete pages; NGO B's objects never show and
never change, nothing new lands in NGO B, and staff cannot make themselves
superuser, staff of another organisation, or members of a group.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken

from accounts import enrolment, sealing
from accounts.events import record_event
from accounts.models import AuthenticatorApp, AuthEvent, BackupCodes, EnrolmentCode, Invitation, Organisation, User
from casework.audit import log_access
from casework.import_models import ImportJob, ImportMapping
from casework.models import AccessLog, Case, CaseIdentifier, Institution
from casework.screening import linkage_digest
from casework.task_models import FollowUpRule, Task
from partners.models import CaseList, ListAnswer
from reports.models import Release, Snapshot
from tests.factories import CaseFactory, InstitutionFactory, OrganisationFactory, UserFactory
from tests.list_helpers import answer, sent_list

SUPERUSER_ONLY = {Snapshot, Release, Group, AccessAttempt}


@pytest.fixture
def world(db) -> dict[str, Any]:
    ngo_a = OrganisationFactory(slug="ngo-a", name="NGO A (synthetic)")
    ngo_b = OrganisationFactory(slug="ngo-b", name="NGO B (synthetic)")
    staff = UserFactory(username="staff-a", organisation=ngo_a, role="supervisor")
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.all())
    other = UserFactory(username="worker-of-b", organisation=ngo_b)
    InstitutionFactory(code="crimea-77")
    case_a = CaseFactory(organisation=ngo_a)
    case_b = CaseFactory(organisation=ngo_b)
    CaseIdentifier.objects.create(case=case_b, kind="register_number", digest=linkage_digest("B-1", kind="x"))
    CaseIdentifier.objects.create(case=case_a, kind="register_number", digest=linkage_digest("A-1", kind="x"))
    log_access(action=AccessLog.Action.VIEW, door=AccessLog.Door.WEB, organisation_id=ngo_b.pk, case_ids=[case_b.pk])
    record_event(AuthEvent.Kind.SIGN_IN, request=None, user=other)
    AuthenticatorApp.objects.create(user=other, name="b's phone", confirmed=True)
    backup = BackupCodes.objects.create(user=other, name="b's codes", confirmed=True)
    StaticToken.objects.create(device=backup, token=sealing.code_digest("bcode123", sealing.BACKUP_CODES))
    enrolment.issue_enrolment_code(user=UserFactory(username="new-in-b", organisation=ngo_b), by=None)
    qatar = Organisation.objects.get(slug="qatar")
    list_b = sent_list(ngo_b, qatar, [case_b])
    answer(list_b, case_b, "received", dt.date(2024, 3, 5))
    sent_list(ngo_a, qatar, [case_a])
    snapshot = Snapshot.objects.create(as_of=dt.date(2024, 1, 1), trigger="command", min_cell=5)
    Release.objects.create(
        number=1,
        as_of=dt.date(2024, 1, 1),
        snapshot=snapshot,
        figures={},
        method="zcdp-discrete-gaussian",
        parameters={},
        rho=0.5,
        sigma=3.0,
        min_cell=5,
        prepared_through="command",
    )
    Group.objects.create(name="b-helpers")
    # A caseworker's day and the web import, in both organisations.
    for organisation, case in ((ngo_a, case_a), (ngo_b, case_b)):
        rule = FollowUpRule.objects.create(organisation=organisation, kind="verify_report", days=14)
        Task.objects.create(case=case, kind="verify_report", due_on=dt.date(2024, 1, 20), rule=rule)
        uploader = UserFactory(username=f"importer-{organisation.slug}", organisation=organisation, role="supervisor")
        ImportJob.objects.create(organisation=organisation, created_by=uploader, cases_name=f"{organisation.slug}.csv")
        ImportMapping.objects.create(organisation=organisation, sheet="cases", header="дата", column="reported_on")
    invited = UserFactory(username="invited-b", organisation=ngo_b)
    Invitation.objects.create(user=invited, digest="0" * 64, expires_at=timezone.now() + dt.timedelta(days=3))
    AccessAttempt.objects.create(username="worker-of-b", ip_address="192.0.2.9", failures_since_start=1)
    return {"ngo_a": ngo_a, "ngo_b": ngo_b, "staff": staff, "other": other, "case_a": case_a, "case_b": case_b}


@pytest.fixture
def staff_client(client, world):
    client.force_login(world["staff"])  # a whole sign-in, second factor included (tests/conftest.py)
    return client


def foreign_objects(model: type, world: dict[str, Any]) -> list[Any]:
    """Objects of ``model`` that belong to NGO B (or to no organisation, for the superuser-only models)."""
    ngo_b, other, case_b = world["ngo_b"], world["other"], world["case_b"]
    by_model: dict[type, Any] = {
        Organisation: Organisation.objects.filter(pk=ngo_b.pk),
        User: User.objects.filter(pk=other.pk),
        AuthEvent: AuthEvent.objects.filter(user=other),
        AuthenticatorApp: AuthenticatorApp.objects.filter(user=other),
        BackupCodes: BackupCodes.objects.filter(user=other),
        EnrolmentCode: EnrolmentCode.objects.filter(user__organisation=ngo_b),
        Case: Case.objects.filter(pk=case_b.pk),
        CaseIdentifier: CaseIdentifier.objects.filter(case=case_b),
        AccessLog: AccessLog.objects.filter(case=case_b),
        CaseList: CaseList.objects.filter(organisation=ngo_b),
        ListAnswer: ListAnswer.objects.filter(item__case=case_b),
        FollowUpRule: FollowUpRule.objects.filter(organisation=ngo_b),
        Task: Task.objects.filter(case=case_b),
        ImportJob: ImportJob.objects.filter(organisation=ngo_b),
        ImportMapping: ImportMapping.objects.filter(organisation=ngo_b),
        Invitation: Invitation.objects.filter(user__organisation=ngo_b),
    }
    if model in by_model:
        return list(by_model[model])
    return list(model._default_manager.all()[:1])


def url(model: type, view: str, *args: Any) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


def test_every_registered_model_is_covered():
    known = {
        Organisation,
        User,
        AuthEvent,
        AuthenticatorApp,
        BackupCodes,
        EnrolmentCode,
        Case,
        CaseIdentifier,
        AccessLog,
        Institution,
        CaseList,
        ListAnswer,
        FollowUpRule,
        Task,
        ImportJob,
        ImportMapping,
        Invitation,
    }
    uncovered = {model for model in MODELS if model not in known | SUPERUSER_ONLY}
    # The lockout's other records (axes) are superuser-only like AccessAttempt.
    assert {model._meta.app_label for model in uncovered} <= {"axes"}, uncovered


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_staff_of_one_organisation_never_see_or_change_anothers(staff_client, world, model):
    changelist = staff_client.get(url(model, "changelist"))
    superuser_only = model in SUPERUSER_ONLY or model._meta.app_label == "axes"
    if superuser_only:
        assert changelist.status_code == 403, model
    else:
        assert changelist.status_code == 200, model
        for marker in (world["case_b"].reference, "worker-of-b", "NGO B (synthetic)"):
            assert marker not in changelist.text, f"{model._meta.label} lists {marker}"
    for obj in foreign_objects(model, world):
        if model is Institution:
            continue  # shared by every organisation: readable, checked below
        page = staff_client.get(url(model, "change", obj.pk))
        assert page.status_code in {302, 403, 404}, f"{model._meta.label} {obj.pk}: {page.status_code}"
        deleted = staff_client.post(url(model, "delete", obj.pk), {"post": "yes"})
        assert deleted.status_code in {302, 403, 404}
        assert model._default_manager.filter(pk=obj.pk).exists(), f"{model._meta.label} {obj.pk} was deleted"


def test_institutions_are_read_only_for_staff(staff_client, world):
    institution = Institution.objects.get(code="crimea-77")
    assert staff_client.get(url(Institution, "change", institution.pk)).status_code == 200
    response = staff_client.post(
        url(Institution, "change", institution.pk),
        {"code": "crimea-77", "name": "Renamed", "region": "UA-43", "kind": "orphanage"},
    )
    assert response.status_code == 403
    institution.refresh_from_db()
    assert institution.name != "Renamed"
    assert staff_client.get(url(Institution, "add")).status_code == 403


def test_a_case_added_by_staff_is_their_organisations_whatever_the_form_says(staff_client, world):
    response = staff_client.post(
        url(Case, "add"),
        {
            "organisation": world["ngo_b"].pk,
            "sex": "F",
            "oblast": "UA-14",
            "reported_on": "2024-01-10",
            "source": "",
            "placement": "",
            "notes": "",
        },
    )
    assert response.status_code == 302, response.content[:500]
    created = Case.objects.exclude(pk__in=[world["case_a"].pk, world["case_b"].pk]).get()
    assert created.organisation == world["ngo_a"]


def test_a_user_added_by_staff_is_in_their_organisation(staff_client, world):
    response = staff_client.post(
        url(User, "add"),
        {
            "username": "new-colleague",
            "organisation": world["ngo_b"].pk,
            "role": "caseworker",
            "password1": "a-long-synthetic-password-42",
            "password2": "a-long-synthetic-password-42",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert User.objects.get(username="new-colleague").organisation == world["ngo_a"]


def test_staff_cannot_make_themselves_superuser_or_move_organisation(staff_client, world):
    staff = world["staff"]
    group = Group.objects.get(name="b-helpers")
    response = staff_client.post(
        url(User, "change", staff.pk),
        {
            "username": staff.username,
            "organisation": world["ngo_b"].pk,
            "role": "org_admin",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [group.pk],
            "user_permissions": [],
            "first_name": "",
            "last_name": "",
            "email": "",
        },
    )
    # Refused outright now: staff change their own account on the account page, never in the admin.
    assert response.status_code in {200, 302, 403}
    staff.refresh_from_db()
    assert not staff.is_superuser and staff.role == "supervisor"
    assert staff.organisation == world["ngo_a"]
    assert not staff.groups.exists()


def test_the_case_forms_offer_only_the_organisations_people(staff_client, world):
    page = staff_client.get(url(Case, "change", world["case_a"].pk)).text
    assert "worker-of-b" not in page
    assert "staff-a" in page


def test_a_superuser_sees_everything(client, world):
    boss = User.objects.create_superuser(username="boss", password="boss-password-long", organisation=world["ngo_a"])
    client.force_login(boss)
    for model in MODELS:
        assert client.get(url(model, "changelist")).status_code == 200, model
    assert world["case_b"].reference in client.get(url(Case, "changelist")).text


def test_the_admin_history_page_of_a_case_is_logged_as_a_read(staff_client, world):
    case = world["case_a"]
    before = AccessLog.objects.filter(case=case, door="admin").count()
    assert staff_client.get(url(Case, "history", case.pk)).status_code == 200
    assert AccessLog.objects.filter(case=case, door="admin", action="view").count() == before + 1
    assert staff_client.get(url(Case, "history", world["case_b"].pk)).status_code in {302, 404}
    assert not AccessLog.objects.filter(case=world["case_b"], door="admin").exists()


# --- staff and superusers of one's own organisation (found by probing) ----------------------------


@pytest.fixture
def superuser_a(world):
    boss = UserFactory(username="boss-a", organisation=world["ngo_a"], role="org_admin")
    boss.is_superuser = boss.is_staff = True
    boss.save()
    return boss


@pytest.fixture
def other_staff_a(world):
    colleague = UserFactory(username="staff-a-2", organisation=world["ngo_a"], role="supervisor")
    colleague.is_staff = True
    colleague.save()
    return colleague


def test_staff_cannot_take_over_a_superuser_or_another_staff_member_of_their_organisation(
    staff_client, world, superuser_a, other_staff_a
):
    for target in (superuser_a, other_staff_a):
        before = User.objects.get(pk=target.pk)
        password_page = reverse("admin:auth_user_password_change", args=[target.pk])
        assert staff_client.post(
            password_page, {"password1": "Taken-over-9x!", "password2": "Taken-over-9x!"}
        ).status_code in (403, 302)
        staff_client.post(
            reverse("admin:accounts_user_change", args=[target.pk]),
            {
                "username": target.username,
                "organisation": world["ngo_a"].pk,
                "role": "caseworker",
                "email": "x@evil.example",
                "is_active": "on",
            },
        )
        staff_client.post(reverse("admin:accounts_user_delete", args=[target.pk]), {"post": "yes"})
        staff_client.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "deactivate_and_sign_out", "_selected_action": [target.pk]},
        )
        after = User.objects.get(pk=target.pk)
        assert after.password == before.password and after.role == before.role and after.email == before.email
        assert after.is_active


def test_staff_cannot_change_their_own_role_in_the_admin(staff_client, world):
    staff = world["staff"]
    staff_client.post(
        reverse("admin:accounts_user_change", args=[staff.pk]),
        {"username": staff.username, "organisation": world["ngo_a"].pk, "role": "org_admin", "is_active": "on"},
    )
    assert User.objects.get(pk=staff.pk).role == "supervisor"


def test_staff_still_manage_the_ordinary_people_of_their_organisation(staff_client, world):
    person = UserFactory(username="plain-a", organisation=world["ngo_a"], role="caseworker")
    response = staff_client.post(
        reverse("admin:accounts_user_change", args=[person.pk]),
        {"username": person.username, "organisation": world["ngo_a"].pk, "role": "supervisor", "is_active": "on"},
    )
    assert response.status_code == 302
    assert User.objects.get(pk=person.pk).role == "supervisor"
    staff_client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "deactivate_and_sign_out", "_selected_action": [person.pk]},
    )
    assert not User.objects.get(pk=person.pk).is_active


def test_the_admins_search_as_you_type_logs_the_references_it_lists(staff_client, world):
    """Found by probing: the autocomplete answered every page of references and logged none of them."""
    before = AccessLog.objects.filter(action=AccessLog.Action.LIST, door=AccessLog.Door.ADMIN).count()
    response = staff_client.get(
        "/admin/autocomplete/", {"app_label": "casework", "model_name": "accesslog", "field_name": "case", "term": ""}
    )
    assert response.status_code == 200
    shown = {int(item["id"]) for item in response.json()["results"]}
    assert shown == {world["case_a"].pk}  # the organisation's own case only
    logged = AccessLog.objects.filter(action=AccessLog.Action.LIST, door=AccessLog.Door.ADMIN)
    assert logged.count() == before + 1
    assert set(logged.order_by("-id").values_list("case_id", flat=True)[:1]) == shown
