"""An organisation's admin invites, changes and deactivates their own people; the invitation's link works once."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import AuthenticatorApp, AuthEvent, EnrolmentCode, Invitation, Role, User
from tests.factories import UserFactory
from tests.test_security_two_factor import CODES, SETUP, code_for, location, signed_in_with_second_factor

PEOPLE = "/organisation/people/"
LINK = re.compile(r"http://testserver(/accounts/invitation/\d+/[A-Za-z0-9_-]+/)")
NEW_PASSWORD = "a-long-and-new-passphrase-for-tests-9"


@pytest.fixture
def admin_client(org_admin) -> Client:
    return signed_in_with_second_factor(org_admin)


@pytest.fixture(autouse=True)
def mail_task():
    """The mail task runs here, whatever REDIS_URL says (as the password reset's tests do)."""
    from accounts.tasks import send_invitation_mail

    with mock.patch.object(
        send_invitation_mail, "delay", side_effect=lambda **kwargs: send_invitation_mail.apply(kwargs=kwargs)
    ) as delay:
        yield delay


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what the request queued for after its commit (the mail), as a real commit would."""

    def run(send):
        with django_capture_on_commit_callbacks(execute=True):
            return send()

    return run


def invite(committed, admin_client, username="newcomer", role=Role.SUPERVISOR, email="newcomer@ngo-a.example", **extra):
    data = {"username": username, "email": email, "role": role, **extra}
    return committed(lambda: admin_client.post(f"{PEOPLE}invite/", data))


def the_link() -> str:
    [message] = mail.outbox
    return LINK.findall(message.body)[0]


def test_an_invited_supervisor_sets_a_password_then_a_second_factor_and_is_in(
    committed, admin_client, org_admin, ngo_a, ngo_b
):
    response = invite(committed, admin_client, organisation=ngo_b.pk)  # a posted organisation is ignored
    assert response.status_code == 302
    user = User.objects.get(username="newcomer")
    assert (user.organisation, user.role, user.email, user.has_usable_password()) == (
        ngo_a,
        Role.SUPERVISOR,
        "newcomer@ngo-a.example",
        False,
    )
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.INVITED, user=user, by=org_admin).exists()
    link = the_link()
    # The secret is not kept: only its keyed hash.
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token not in Invitation.objects.get(user=user).digest
    visitor = Client()
    form = visitor.get(link)
    assert form.status_code == 200 and "newcomer" in form.text
    assert "no-store" in form["Cache-Control"]
    response = visitor.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert location(response)[0] == SETUP
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.INVITATION_USED, user=user).exists()
    # Straight to the app: the link stood for the enrolment code.
    page = visitor.get(SETUP)
    assert "qr-code" in page.text
    device = AuthenticatorApp.objects.get(user=user, confirmed=False)
    assert location(visitor.post(SETUP, {"token": code_for(device)}))[0] == CODES
    assert EnrolmentCode.objects.get(user=user).used_at is not None
    assert visitor.get("/").status_code == 200


def test_the_link_works_once(committed, admin_client):
    invite(committed, admin_client, role=Role.CASEWORKER)
    link = the_link()
    assert Client().post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 302
    again = Client()
    for response in (
        again.get(link),
        again.post(link, {"new_password1": "another-passphrase-42-x", "new_password2": "another-passphrase-42-x"}),
    ):
        assert response.status_code == 400 and "does not work" in response.text
    user = User.objects.get(username="newcomer")
    assert user.check_password(NEW_PASSWORD)


def test_an_expired_withdrawn_or_forged_link_does_not_work(committed, admin_client, org_admin):
    invite(committed, admin_client, role=Role.CASEWORKER)
    link = the_link()
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now())
    assert Client().get(link).status_code == 400
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() + timezone.timedelta(hours=1))
    assert Client().get(link).status_code == 200
    forged = link[:-5] + "AAAA/"
    assert Client().get(forged).status_code == 400
    assert Client().get(f"/accounts/invitation/999999/{'A' * 43}/").status_code == 400
    assert Client().get(f"/accounts/invitation/{invitation.pk}/{'x' * 500}/").status_code == 400
    # A new invitation withdraws the first link.
    mail.outbox.clear()
    user = User.objects.get(username="newcomer")
    assert committed(lambda: admin_client.post(f"{PEOPLE}{user.pk}/invite-again/")).status_code == 302
    assert Client().get(link).status_code == 400
    assert Client().get(the_link()).status_code == 200
    assert not User.objects.get(pk=user.pk).has_usable_password()


def test_a_weak_password_is_refused_and_the_link_still_works(committed, admin_client):
    invite(committed, admin_client, role=Role.CASEWORKER)
    link = the_link()
    response = Client().post(link, {"new_password1": "123", "new_password2": "123"})
    assert response.status_code == 400 and 'class="errorlist' in response.text
    assert Invitation.objects.get().used_at is None
    assert Client().get(link).status_code == 200


def test_bad_invitations_are_refused_and_create_nobody(admin_client, caseworker):
    for data in (
        {"username": "", "email": "x@ngo-a.example", "role": "caseworker"},
        {"username": "new one", "email": "x@ngo-a.example", "role": "caseworker"},
        {"username": "caseworker", "email": "x@ngo-a.example", "role": "caseworker"},  # taken
        {"username": "newer", "email": "not-an-address", "role": "caseworker"},
        {"username": "newer", "email": "x@ngo-a.example", "role": "superuser"},
    ):
        assert admin_client.post(f"{PEOPLE}invite/", data).status_code == 400, data
    assert not User.objects.filter(username__in=["newer", "new one", ""]).exists()
    assert not Invitation.objects.exists() and not mail.outbox


def test_only_an_organisation_admin_invites(client, caseworker, supervisor):
    for user in (caseworker, supervisor):
        client.force_login(user)
        assert (
            client.post(f"{PEOPLE}invite/", {"username": "x", "email": "x@a.example", "role": "org_admin"}).status_code
            == 403
        )
    assert not User.objects.filter(username="x").exists()


def test_another_organisations_people_are_not_found(caseworker, ngo_b):
    other_admin = UserFactory(username="admin-b", organisation=ngo_b, role=Role.ORG_ADMIN)
    other = signed_in_with_second_factor(other_admin)
    for path, data in (
        (f"{PEOPLE}{caseworker.pk}/role/", {"role": "org_admin"}),
        (f"{PEOPLE}{caseworker.pk}/deactivate/", {"confirmed": "1"}),
        (f"{PEOPLE}{caseworker.pk}/invite-again/", {}),
    ):
        assert other.post(path, data).status_code == 404, path
    caseworker.refresh_from_db()
    assert caseworker.role == Role.CASEWORKER and caseworker.is_active
    assert f"{PEOPLE}{caseworker.pk}/" not in other.get(PEOPLE).text


def test_the_admin_changes_a_role_logged_never_their_own(admin_client, org_admin, caseworker):
    assert admin_client.post(f"{PEOPLE}{caseworker.pk}/role/", {"role": "supervisor"}).status_code == 302
    caseworker.refresh_from_db()
    assert caseworker.role == Role.SUPERVISOR
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.ROLE_CHANGED, user=caseworker, by=org_admin).exists()
    assert admin_client.post(f"{PEOPLE}{caseworker.pk}/role/", {"role": "boss"}).status_code == 302
    assert User.objects.get(pk=caseworker.pk).role == Role.SUPERVISOR
    assert admin_client.post(f"{PEOPLE}{org_admin.pk}/role/", {"role": "caseworker"}).status_code == 403
    assert User.objects.get(pk=org_admin.pk).role == Role.ORG_ADMIN


def test_deactivation_asks_first_then_ends_the_sessions(admin_client, org_admin, caseworker):
    theirs = Client()
    theirs.force_login(caseworker)
    assert theirs.get("/").status_code == 200
    page = admin_client.post(f"{PEOPLE}{caseworker.pk}/deactivate/")
    assert page.status_code == 200 and User.objects.get(pk=caseworker.pk).is_active  # the question, nothing done
    assert admin_client.post(f"{PEOPLE}{caseworker.pk}/deactivate/", {"confirmed": "1"}).status_code == 302
    assert not User.objects.get(pk=caseworker.pk).is_active
    assert theirs.get("/").status_code == 302  # signed out
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.DEACTIVATED, user=caseworker, by=org_admin).exists()
    assert admin_client.post(f"{PEOPLE}{org_admin.pk}/deactivate/", {"confirmed": "1"}).status_code == 403


def test_the_people_page_has_one_invitation_form_and_a_plain_title(admin_client):
    import re

    page = admin_client.get("/organisation/people/").content.decode()
    [title] = re.findall(r"<title>(.*?)</title>", page, flags=re.S)
    assert "<" not in title and title.startswith("People")
    assert page.count('action="/organisation/people/invite/"') == 1
