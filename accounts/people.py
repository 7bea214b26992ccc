"""The organisation's people, for its admin: who has a second factor, and enrolment codes to set one up.

Thin doors onto accounts.enrolment. An organisation admin sees their own
organisation's people (a superuser, their own organisation's; the admin site
reaches every organisation); another organisation's user is a 404. An
enrolment code is shown once, on the page that answers the POST, never cached.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import enrolment, selectors
from accounts.pages import confirm_page, confirmed, forbidden, not_found
from accounts.permissions import can_manage_organisation, can_manage_second_factor
from accounts.requests import signed_in_user


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
    found = list(selectors.organisation_people(user.organisation_id))
    for person in found:
        person.manageable = person.is_active and can_manage_second_factor(user, person)  # type: ignore[attr-defined]
    context = {"nav": "organisation", "tab": "people", "people": found}
    return render(request, "account/people.html", context)


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
