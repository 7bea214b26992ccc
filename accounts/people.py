"""The organisation's people, for its admin: who has a second factor, and enrolment codes to set one up.

Thin doors onto accounts.enrolment. An organisation admin sees their own
organisation's people (a superuser, their own organisation's; the admin site
reaches every organisation); another organisation's user is a 404. An
enrolment code is shown once, on the page that answers the POST, never cached.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import enrolment, invitations, selectors
from accounts.forms import InviteForm, NewPasswordForm, RoleForm
from accounts.models import Role
from accounts.pages import confirm_page, confirmed, forbidden, not_found
from accounts.permissions import can_manage_organisation, can_manage_person, can_manage_second_factor
from accounts.requests import signed_in_user
from accounts.two_factor import ENROLMENT_CODE_SESSION_KEY


def _shown_once(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    patch_cache_control(response, private=True, no_store=True)
    return response


@login_required
@require_GET
def people(request: HttpRequest) -> HttpResponseBase:
    user = signed_in_user(request)
    if not can_manage_organisation(user):
        return forbidden(request, _("Only your organisation's admin manages its people."))
    return _people_page(request)


def _people_page(request: HttpRequest, *, invite_form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    user = signed_in_user(request)
    found = list(selectors.organisation_people(user.organisation_id))
    for person in found:
        person.manageable = person.is_active and can_manage_second_factor(user, person)  # type: ignore[attr-defined]
        person.editable = person.is_active and can_manage_person(user, person)  # type: ignore[attr-defined]
    context = {
        "nav": "organisation",
        "tab": "people",
        "people": found,
        "invite_form": invite_form or InviteForm(),
        "roles": Role.choices,
    }
    return render(request, "account/people.html", context, status=status)


@login_required
@require_POST
def enrolment_code(request: HttpRequest, user_id: int) -> HttpResponseBase:
    actor = signed_in_user(request)
    if not can_manage_organisation(actor):
        return forbidden(request, _("Only your organisation's admin manages its people."))
    person: Any = selectors.organisation_people(actor.organisation_id).filter(pk=user_id).first()
    if person is None:
        return not_found(request)
    if not can_manage_second_factor(actor, person):
        return forbidden(
            request,
            _("You cannot do this for your own account, nor for staff: ask another admin or a superuser."),
        )
    reset = bool(person.has_app or person.backup_codes_left)
    if reset and not confirmed(request):
        return confirm_page(
            request,
            title=_("Reset the second factor of %(user)s?") % {"user": person.get_username()},
            question=_(
                "Their authenticator apps and backup codes stop working now, and they are signed out everywhere."
            ),
            consequence=_(
                "You get an enrolment code to give them, in person or by a channel you trust: with it they set up "
                "a new app at their next sign-in. Do this only when you are sure the request comes from them."
            ),
            confirm_label=_("Reset and issue a code"),
            cancel_url=reverse("organisation-people"),
            nav="organisation",
        )
    try:
        issued = enrolment.issue_enrolment_code(user=person, by=actor, request=request, reset=reset)
    except PermissionDenied:
        return forbidden(request)
    except ValidationError as refusal:
        for message in refusal.messages:
            messages.error(request, message)
        return redirect("organisation-people")
    context = {"nav": "organisation", "tab": "people", "issued": issued}
    return _shown_once(render(request, "account/enrolment_code_issued.html", context, status=201))


# --- invitations, roles, deactivation (accounts.invitations) ------------------------------------


def _person(actor: Any, user_id: int) -> Any:
    """One of the actor's organisation's people, or None (another organisation's user is not found)."""
    return selectors.organisation_people(actor.organisation_id).filter(pk=user_id).first()


def _admin_only(request: HttpRequest) -> HttpResponse | None:
    if not can_manage_organisation(signed_in_user(request)):
        return forbidden(request, _("Only your organisation's admin manages its people."))
    return None


@login_required
@require_POST
def invite(request: HttpRequest) -> HttpResponseBase:
    refused = _admin_only(request)
    if refused is not None:
        return refused
    actor = signed_in_user(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = invitations.invite(
                by=actor,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                request=request,
            )
        except PermissionDenied:
            return forbidden(request)
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            messages.success(
                request,
                _("%(user)s is invited: the link went to their e-mail address.")
                % {"user": invitation.user.get_username()},
            )
            return redirect("organisation-people")
    return _people_page(request, invite_form=form, status=400)


@login_required
@require_POST
def invite_again(request: HttpRequest, user_id: int) -> HttpResponseBase:
    refused = _admin_only(request)
    if refused is not None:
        return refused
    actor = signed_in_user(request)
    person = _person(actor, user_id)
    if person is None:
        return not_found(request)
    try:
        invitations.invite_again(by=actor, user=person, request=request)
    except PermissionDenied:
        return forbidden(request, _("You cannot do this for your own account, nor for staff."))
    except ValidationError as refusal:
        for message in refusal.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("A new invitation went to %(user)s.") % {"user": person.get_username()})
    return redirect("organisation-people")


@login_required
@require_POST
def change_role(request: HttpRequest, user_id: int) -> HttpResponseBase:
    refused = _admin_only(request)
    if refused is not None:
        return refused
    actor = signed_in_user(request)
    person = _person(actor, user_id)
    if person is None:
        return not_found(request)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return redirect("organisation-people")
    try:
        changed = invitations.change_role(by=actor, user=person, role=form.cleaned_data["role"], request=request)
    except PermissionDenied:
        return forbidden(request, _("You cannot do this for your own account, nor for staff."))
    if changed:
        messages.success(
            request,
            _("%(user)s is now: %(role)s.") % {"user": person.get_username(), "role": person.get_role_display()},
        )
    return redirect("organisation-people")


@login_required
@require_POST
def deactivate(request: HttpRequest, user_id: int) -> HttpResponseBase:
    refused = _admin_only(request)
    if refused is not None:
        return refused
    actor = signed_in_user(request)
    person = _person(actor, user_id)
    if person is None:
        return not_found(request)
    if not can_manage_person(actor, person):
        return forbidden(request, _("You cannot do this for your own account, nor for staff."))
    if not confirmed(request):
        return confirm_page(
            request,
            title=_("Deactivate %(user)s?") % {"user": person.get_username()},
            question=_("They are signed out everywhere now and can no longer sign in."),
            consequence=_("Their cases stay assigned to them: hand them over on the team page."),
            confirm_label=_("Deactivate"),
            cancel_url=reverse("organisation-people"),
            nav="organisation",
        )
    try:
        invitations.deactivate(by=actor, user=person, request=request)
    except ValidationError as refusal:
        for message in refusal.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("%(user)s is deactivated.") % {"user": person.get_username()})
    return redirect("organisation-people")


@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, invitation_id: int, token: str) -> HttpResponseBase:
    """The invited person sets a password; then they are signed in and set up their second factor."""
    try:
        invitation = invitations.live_invitation(invitation_id, token)
    except invitations.InvitationRefused:
        return _shown_once(render(request, "registration/invitation_refused.html", status=400))
    form = NewPasswordForm(invitation.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accepted = invitations.accept(
                invitation_id=invitation_id,
                token=token,
                password=form.cleaned_data["new_password1"],
                request=request,
            )
        except invitations.InvitationRefused:
            return _shown_once(render(request, "registration/invitation_refused.html", status=400))
        except ValidationError as refusal:
            for message in refusal.messages:
                form.add_error("new_password2", message)
        else:
            login(request, accepted.user, backend="django.contrib.auth.backends.ModelBackend")
            if accepted.enrolment_code_id is not None:
                request.session[ENROLMENT_CODE_SESSION_KEY] = f"{accepted.user.pk}:{accepted.enrolment_code_id}"
            messages.success(request, _("Your password is set. Now set up your second factor."))
            return redirect("two-factor-setup")
    context = {"form": form, "invited": invitation.user}
    return _shown_once(
        render(request, "registration/invitation_accept.html", context, status=400 if form.errors else 200)
    )
