"""The organisation pages: an org admin manages the API tokens and webhooks of their organisation.

Thin doors onto partners.services and partners.webhooks. Only an organisation
admin (or a superuser, for their own organisation) gets in; another
organisation's token or webhook is a 404. A token's plain value and a
webhook's signing secret are shown once, on the page that answers the
creating POST, which is never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.pages import confirm_page, confirmed, forbidden, not_found
from accounts.permissions import can_manage_organisation
from accounts.requests import signed_in_user
from casework.audit import log_access
from casework.models import AccessLog
from partners import selectors, webhooks
from partners import tokens as token_services
from partners.forms import TokenForm, WebhookForm
from partners.models import WebhookDelivery

DELIVERIES_PER_PAGE = 25
View = Callable[..., HttpResponseBase]


_user = signed_in_user


def org_admin_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not can_manage_organisation(_user(request)):
            return forbidden(request, _("Only your organisation's admin manages its API tokens and webhooks."))
        return view(request, *args, **kwargs)

    return wrapper


def _shown_once(response: HttpResponse) -> HttpResponse:
    """A page holding a secret: no cache of any kind may keep it."""
    add_never_cache_headers(response)
    patch_cache_control(response, private=True, no_store=True)
    return response


# --- pages -------------------------------------------------------------------------------


@login_required
def organisation_home(request: HttpRequest) -> HttpResponseBase:
    return redirect("organisation-people")


def _tokens_page(request: HttpRequest, form: TokenForm, status: int = 200) -> HttpResponse:
    user = _user(request)
    context = {
        "nav": "organisation",
        "tab": "tokens",
        "form": form,
        "tokens": list(selectors.organisation_tokens(user.organisation_id)),
    }
    return render(request, "partners/tokens.html", context, status=status)


@org_admin_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    if request.method != "POST":
        return _tokens_page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, plain = token_services.create_token(
                organisation=user.organisation,
                scope=form.cleaned_data["scope"],
                created_by=user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            # Rendered in answer to the POST, never stored anywhere: reloading cannot show it again.
            context = {"nav": "organisation", "tab": "tokens", "token": token, "plain": plain}
            return _shown_once(render(request, "partners/token_created.html", context, status=201))
    return _tokens_page(request, form, status=400)


@org_admin_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponseBase:
    user = _user(request)
    token = selectors.organisation_tokens(user.organisation_id).filter(pk=token_id).first()
    if token is None:
        return not_found(request)
    if token.revoked_at is not None:
        messages.info(request, _("That token had already been revoked."))
    elif not confirmed(request):
        return confirm_page(
            request,
            title=_("Revoke this API token?"),
            question=_("The token “%(name)s” (%(prefix)s…) will stop working from the next request.")
            % {"prefix": token.prefix, "name": token.name or "—"},
            consequence=_("Whatever uses it (a partner's system, a script) is refused until it gets a new token."),
            confirm_label=_("Revoke the token"),
            cancel_url=reverse("organisation-tokens"),
            nav="organisation",
        )
    else:
        token_services.revoke_token(token=token, revoked_by=user)
        messages.success(
            request,
            _("The token “%(name)s” (%(prefix)s) is revoked: it stops working from the next request.")
            % {"prefix": token.prefix, "name": token.name or "—"},
        )
    return redirect("organisation-tokens")


def _webhooks_page(request: HttpRequest, form: WebhookForm, status: int = 200) -> HttpResponse:
    user = _user(request)
    paginator: Paginator[WebhookDelivery] = Paginator(
        selectors.organisation_deliveries(user.organisation_id), DELIVERIES_PER_PAGE
    )
    page = paginator.get_page(request.GET.get("page"))
    # The delivery log names cases: each one shown is a read, logged like any list of cases.
    log_access(
        action=AccessLog.Action.LIST,
        door=AccessLog.Door.WEB,
        organisation_id=user.organisation_id,
        case_ids=sorted({case_id for delivery in page if (case_id := delivery.case_id) is not None}),  # type: ignore[attr-defined]
        user=user,
        request=request,
    )
    context = {
        "nav": "organisation",
        "tab": "webhooks",
        "form": form,
        "endpoints": list(selectors.organisation_webhooks(user.organisation_id)),
        "page": page,
        "signature_header": webhooks.SIGNATURE_HEADER,
    }
    return render(request, "partners/webhooks.html", context, status=status)


@org_admin_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    if request.method != "POST":
        return _webhooks_page(request, WebhookForm())
    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = webhooks.create_endpoint(
                organisation=user.organisation, url=form.cleaned_data["url"].strip(), created_by=user
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            context = {
                "nav": "organisation",
                "tab": "webhooks",
                "endpoint": endpoint,
                "secret": secret,
                "signature_header": webhooks.SIGNATURE_HEADER,
                "event_type": webhooks.EVENT_TYPE,
            }
            return _shown_once(render(request, "partners/webhook_created.html", context, status=201))
    return _webhooks_page(request, form, status=400)


@org_admin_required
@require_POST
def webhook_deactivate(request: HttpRequest, endpoint_id: int) -> HttpResponseBase:
    user = _user(request)
    endpoint = selectors.organisation_webhooks(user.organisation_id).filter(pk=endpoint_id).first()
    if endpoint is None:
        return not_found(request)
    if not endpoint.is_active:
        messages.info(request, _("That webhook was already inactive."))
    elif not confirmed(request):
        return confirm_page(
            request,
            title=_("Deactivate this webhook?"),
            question=_("No more events will be sent to %(url)s.") % {"url": endpoint.url},
            consequence=_("Missed events are not sent later. To get events again, add the URL anew (new secret)."),
            confirm_label=_("Deactivate the webhook"),
            cancel_url=reverse("organisation-webhooks"),
            nav="organisation",
        )
    else:
        webhooks.deactivate_endpoint(endpoint=endpoint, deactivated_by=user)
        messages.success(request, _("No more events will be sent to %(url)s.") % {"url": endpoint.url})
    return redirect(reverse("organisation-webhooks"))
