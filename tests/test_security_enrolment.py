"""A second factor is set up only with an enrolment code from the organisation's admin or a superuser.

Found by probing: a supervisor whose backup codes were used up (or who never enrolled) signed in with
the password, scanned the QR code shown, and was in. Now the password alone leads to a page asking for
an enrolment code; codes are issued, reset and spent by the admins named in accounts.permissions, and
each step is logged. Every sign-in here goes through the pages.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken

from accounts import enrolment
from accounts.models import AuthenticatorApp, AuthEvent, BackupCodes, EnrolmentCode, Role, User
from tests.factories import UserFactory
from tests.test_security_two_factor import (
    CODES,
    PASSWORD,
    SETUP,
    VERIFY,
    code_for,
    location,
    set_up_two_factor,
    sign_in,
    signed_in_with_second_factor,
)

PEOPLE = "/organisation/people/"


def enrolment_url(user: User) -> str:
    return f"/organisation/people/{user.pk}/enrolment-code/"


def shown_code(response) -> str:
    [code] = re.findall(r'id="new-secret" class="secret" value="([A-Z0-9-]+)"', response.text)
    return code


@pytest.fixture
def admin_client(org_admin) -> Client:
    return signed_in_with_second_factor(org_admin)


def test_a_password_alone_never_sets_up_a_second_factor(client, supervisor):
    assert location(sign_in(client, "supervisor"))[0] == VERIFY
    assert location(client.get(VERIFY))[0] == SETUP
    page = client.get(SETUP)
    assert page.status_code == 200
    assert 'name="enrolment_code"' in page.text and "qr-code" not in page.text and "setup-key" not in page.text
    # Posting a code "from the app" straight away gets the same page, and no key was ever made.
    assert 'name="enrolment_code"' in client.post(SETUP, {"token": "123456"}).text
    assert not AuthenticatorApp.objects.filter(user=supervisor).exists()
    assert location(client.get("/"))[0] == VERIFY


def test_used_up_backup_codes_lead_to_the_enrolment_code_not_to_a_new_app(supervisor):
    device, codes = set_up_two_factor(Client(), supervisor)
    device.delete()  # a lost phone...
    for code in codes:  # ...and every backup code spent
        assert BackupCodes.objects.get(user=supervisor).verify_token(code)
    client = Client()
    sign_in(client, "supervisor")
    assert location(client.get(VERIFY))[0] == SETUP
    assert 'name="enrolment_code"' in client.get(SETUP).text
    assert not AuthenticatorApp.objects.filter(user=supervisor).exists()


def test_a_wrong_code_is_refused_logged_and_counted_towards_the_lockout(client, supervisor, settings):
    enrolment.issue_enrolment_code(user=supervisor, by=None)
    sign_in(client, "supervisor")
    refused = client.post(SETUP, {"enrolment_code": "AAAA-BBBB-CCCC"})
    assert refused.status_code == 400 and "not right" in refused.text and 'aria-invalid="true"' in refused.text
    assert AuthEvent.objects.filter(user=supervisor, kind=AuthEvent.Kind.ENROLMENT_FAILED).count() == 1
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 2):
        client.post(SETUP, {"enrolment_code": "AAAA-BBBB-CCCC"})
    locked = client.post(SETUP, {"enrolment_code": "AAAA-BBBB-CCCC"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("state", ["another user's", "expired", "withdrawn", "used"])
def test_only_the_users_own_live_code_works(supervisor, ngo_a, state):
    issued = enrolment.issue_enrolment_code(user=supervisor, by=None)
    code = issued.code
    if state == "another user's":
        code = enrolment.issue_enrolment_code(user=UserFactory(username="other", role=Role.SUPERVISOR), by=None).code
    elif state == "expired":
        EnrolmentCode.objects.filter(user=supervisor).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    elif state == "withdrawn":
        enrolment.issue_enrolment_code(user=supervisor, by=None)  # a newer code replaces it
    elif state == "used":
        set_up_client = Client()
        sign_in(set_up_client, "supervisor")
        set_up_client.post(SETUP, {"enrolment_code": code})
        set_up_client.get(SETUP)
        device = AuthenticatorApp.objects.get(user=supervisor, confirmed=False)
        assert location(set_up_client.post(SETUP, {"token": code_for(device)}))[0] == CODES
        AuthenticatorApp.objects.filter(user=supervisor).delete()
        BackupCodes.objects.filter(user=supervisor).delete()
    client = Client()
    sign_in(client, "supervisor")
    response = client.post(SETUP, {"enrolment_code": code})
    assert response.status_code == 400 and "not right" in response.text


def test_the_code_is_spent_when_the_app_is_confirmed_and_typed_as_people_copy_it(client, supervisor):
    issued = enrolment.issue_enrolment_code(user=supervisor, by=None)
    sign_in(client, "supervisor")
    typed = issued.code.lower().replace("-", " ")
    assert location(client.post(SETUP, {"enrolment_code": typed}))[0] == SETUP
    page = client.get(SETUP)
    assert "qr-code" in page.text
    code = EnrolmentCode.objects.get(user=supervisor)
    assert code.used_at is None  # not before the app is confirmed
    device = AuthenticatorApp.objects.get(user=supervisor, confirmed=False)
    assert location(client.post(SETUP, {"token": code_for(device)}))[0] == CODES
    code.refresh_from_db()
    assert code.used_at is not None
    assert client.get("/").status_code == 200
    # The session keeps neither the code nor a way back to it.
    for session in Session.objects.all():
        assert issued.code not in str(session.get_decoded())


def test_a_code_withdrawn_between_typing_it_and_confirming_the_app_sets_nothing_up(client, supervisor):
    issued = enrolment.issue_enrolment_code(user=supervisor, by=None)
    sign_in(client, "supervisor")
    client.post(SETUP, {"enrolment_code": issued.code})
    client.get(SETUP)
    device = AuthenticatorApp.objects.get(user=supervisor, confirmed=False)
    enrolment.issue_enrolment_code(user=supervisor, by=None)  # the admin issued another meanwhile
    response = client.post(SETUP, {"token": code_for(device)})
    # Asked for the newest code again; nothing was set up.
    assert response.status_code == 200 and 'name="enrolment_code"' in response.text
    assert not AuthenticatorApp.objects.filter(user=supervisor, confirmed=True).exists()
    assert not BackupCodes.objects.filter(user=supervisor).exists()


def test_someone_who_passed_a_factor_adds_an_app_without_a_code(supervisor):
    device, codes = set_up_two_factor(Client(), supervisor)
    device.delete()
    client = Client()
    sign_in(client, "supervisor")
    assert client.post(VERIFY, {"token": codes[0]}).status_code == 302
    page = client.get(SETUP)
    assert "qr-code" in page.text and 'name="enrolment_code"' not in page.text


# --- the organisation admin's page ---------------------------------------------------------------


def test_the_org_admin_issues_a_code_shown_once_and_logged(admin_client, org_admin, supervisor):
    page = admin_client.get(PEOPLE)
    assert page.status_code == 200 and "supervisor" in page.text
    response = admin_client.post(enrolment_url(supervisor))
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    code = shown_code(response)
    assert EnrolmentCode.objects.get(user=supervisor).digest not in response.text
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.ENROLMENT_ISSUED, user=supervisor)
    assert event.by == org_admin
    assert "usable until" in admin_client.get(PEOPLE).text.lower()
    # The supervisor sets up an app with it.
    client = Client()
    sign_in(client, "supervisor")
    assert location(client.post(SETUP, {"enrolment_code": code}))[0] == SETUP
    client.get(SETUP)
    device = AuthenticatorApp.objects.get(user=supervisor, confirmed=False)
    assert location(client.post(SETUP, {"token": code_for(device)}))[0] == CODES


def test_a_reset_asks_first_then_removes_the_factor_ends_the_sessions_and_issues_a_code(
    admin_client, org_admin, supervisor
):
    victim_session = signed_in_with_second_factor(supervisor)
    assert victim_session.get("/").status_code == 200
    asked = admin_client.post(enrolment_url(supervisor))
    assert asked.status_code == 200 and 'name="confirmed"' in asked.text
    assert AuthenticatorApp.objects.filter(user=supervisor).exists()  # nothing changed yet
    done = admin_client.post(enrolment_url(supervisor), {"confirmed": "1"})
    assert done.status_code == 201
    code = shown_code(done)
    assert not AuthenticatorApp.objects.filter(user=supervisor).exists()
    assert not StaticToken.objects.filter(device__user=supervisor).exists()
    assert location(victim_session.get("/"))[0] == "/accounts/login/"
    assert AuthEvent.objects.get(kind=AuthEvent.Kind.FACTOR_RESET, user=supervisor).by == org_admin
    client = Client()
    sign_in(client, "supervisor")
    assert location(client.post(SETUP, {"enrolment_code": code}))[0] == SETUP


def test_the_page_and_its_action_belong_to_the_organisations_admin(
    admin_client, org_admin, supervisor, caseworker_b, ngo_b
):
    # Another organisation's user: not found, whatever the admin tries.
    assert admin_client.post(enrolment_url(caseworker_b)).status_code == 404
    assert admin_client.post(enrolment_url(caseworker_b), {"confirmed": "1"}).status_code == 404
    # Never one's own factor, nor staff's.
    assert admin_client.post(enrolment_url(org_admin), {"confirmed": "1"}).status_code == 403
    staff = UserFactory(username="staff-a", organisation=org_admin.organisation, is_staff=True)
    assert admin_client.post(enrolment_url(staff)).status_code == 403
    # A supervisor of the organisation is not its admin.
    supervisor_client = signed_in_with_second_factor(supervisor)
    assert supervisor_client.get(PEOPLE).status_code == 403
    newcomer = UserFactory(username="new-one")
    assert supervisor_client.post(enrolment_url(newcomer)).status_code == 403
    assert not EnrolmentCode.objects.filter(issued_by__isnull=False).exists()
    # The admin of NGO B reaches only NGO B's people.
    admin_b = UserFactory(username="admin-b", organisation=ngo_b, role=Role.ORG_ADMIN)
    b_client = signed_in_with_second_factor(admin_b)
    listed = b_client.get(PEOPLE)
    assert "caseworker_b" in listed.text or caseworker_b.username in listed.text
    # (the role choices name "supervisor": look for NGO A's supervisor themself)
    assert re.search(r'<th scope="row"[^>]*>supervisor\b', listed.text) is None
    assert f"{PEOPLE}{supervisor.pk}/" not in listed.text


def test_the_people_page_costs_the_same_queries_for_few_or_many(admin_client, org_admin, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(PEOPLE).status_code == 200
        return len(queries)

    few = count()
    for number in range(15):
        user = UserFactory(username=f"person-{number}", organisation=org_admin.organisation, role=Role.SUPERVISOR)
        enrolment.issue_enrolment_code(user=user, by=None)
    assert count() == few


# --- the admin site and the command line ----------------------------------------------------------


def test_a_superuser_resets_from_the_admin_and_staff_who_may_not_are_refused(supervisor, ngo_a):
    superuser = User.objects.create_superuser(username="root", password=PASSWORD, organisation=ngo_a)
    set_up_two_factor(Client(), supervisor)
    client = signed_in_with_second_factor(superuser)
    response = client.post(
        "/admin/accounts/user/", {"action": "reset_second_factor", "_selected_action": [supervisor.pk]}
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert re.search(r"<code>[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}</code>", response.text)
    assert not AuthenticatorApp.objects.filter(user=supervisor).exists()
    assert AuthEvent.objects.get(kind=AuthEvent.Kind.FACTOR_RESET, user=supervisor).by == superuser

    staff = UserFactory(username="staff-a", organisation=ngo_a, is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "change_user"]))
    staff_client = signed_in_with_second_factor(staff)
    before = EnrolmentCode.objects.count()
    refused = staff_client.post(
        "/admin/accounts/user/", {"action": "reset_second_factor", "_selected_action": [supervisor.pk]}, follow=True
    )
    assert "Not done for supervisor" in refused.text
    assert EnrolmentCode.objects.count() == before


def test_the_command_issues_a_code_and_refuses_to_replace_a_factor_without_reset(supervisor):
    out = io.StringIO()
    call_command("issue_enrolment_code", "supervisor", stdout=out)
    code = out.getvalue().strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    assert enrolment.live_code(supervisor, code) is not None
    set_up_two_factor(Client(), supervisor)
    with pytest.raises(CommandError, match="--reset"):
        call_command("issue_enrolment_code", "supervisor", stdout=io.StringIO())
    call_command("issue_enrolment_code", "supervisor", "--reset", stdout=io.StringIO())
    assert not AuthenticatorApp.objects.filter(user=supervisor).exists()
    with pytest.raises(CommandError, match="no user"):
        call_command("issue_enrolment_code", "nobody", stdout=io.StringIO())


def test_a_new_supervisor_gets_an_enrolment_code_from_add_user(ngo_a):
    out = io.StringIO()
    call_command(
        "add_user", "newsup", "--organisation", "ngo-a", "--role", "supervisor", "--password", PASSWORD, stdout=out
    )
    code = out.getvalue().strip().splitlines()[-1]
    assert enrolment.live_code(User.objects.get(username="newsup"), code) is not None
    out = io.StringIO()
    call_command(
        "add_user", "newcw", "--organisation", "ngo-a", "--role", "caseworker", "--password", PASSWORD, stdout=out
    )
    assert "enrolment code" not in out.getvalue()
