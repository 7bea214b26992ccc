"""Sharing cases with partner organisations: from a case's page, or many at once from the case list.

Supervisors only (accounts.permissions.can_share_cases). Sharing by filter
takes a confirmation step that shows the count; the count is checked again
when confirmed, so that nothing is shared that the user did not see counted.
The sharing section of the case page and the sharing form of the case list
are added to casework's pages here (``register_sections``), so casework never
imports partners.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.pages import confirm_page, confirmed, not_found
from accounts.permissions import can_read_cases, can_share_cases
from accounts.requests import safe_next_url, signed_in_user
from casework import sections
from casework import selectors as case_selectors
from casework.forms import CaseFilter
from casework.models import Case
from casework.views import filter_query_of, render_case_page, supervisor_required
from partners import selectors, services
from partners.forms import ShareForm
from partners.models import Share, ShareScope

SECTION = "sharing"
# One bulk share at most: beyond this, narrow the filter (and keep each write a reasonable size).
MAX_BULK_SHARE = 10_000
_user = signed_in_user


# --- the sections added to casework's pages ------------------------------------------


def _case_page_section(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    user = signed_in_user(request)
    if not can_share_cases(user):
        return None
    return {"shares": list(selectors.live_shares(case)), "share_form": ShareForm(user=user)}


def _case_list_section(request: HttpRequest, state: sections.CaseListState) -> dict[str, Any] | None:
    user = signed_in_user(request)
    if not can_share_cases(user) or not state.count:
        return None
    return {"share_form": ShareForm(user=user), "count": state.count, "count_is_exact": state.count_is_exact}


# "My work": shares of the reader's cases that end within this many days.
ENDING_SOON_DAYS = 14


def _my_work_section(request: HttpRequest) -> dict[str, Any] | None:
    user = signed_in_user(request)
    if not can_read_cases(user):
        return None
    now = timezone.now()
    shares = list(
        Share.objects.active(at=now)
        .filter(
            owner_id=user.organisation_id,
            case__assigned_to=user,
            expires_at__lte=now + datetime.timedelta(days=ENDING_SOON_DAYS),
        )
        .select_related("case", "partner")
        .order_by("expires_at", "id")[:10]
    )
    return {"shares": shares, "cases": [share.case for share in shares]}


def register_sections() -> None:
    sections.add_to_case_page(name=SECTION, template="partners/_case_sharing.html", context=_case_page_section)
    sections.add_to_case_list(name=SECTION, template="partners/_case_list_sharing.html", context=_case_list_section)
    sections.add_to_my_work(name=SECTION, template="partners/_my_work_sharing.html", context=_my_work_section)


def _shared_message(count: int, partner: Any, scope: str) -> str:
    scope_label = str(ShareScope(scope).label) if scope in ShareScope.values else scope
    return ngettext(
        "%(count)s case shared with %(partner)s (%(scope)s).",
        "%(count)s cases shared with %(partner)s (%(scope)s).",
        count,
    ) % {"count": formats.number_format(count, force_grouping=True), "partner": partner.name, "scope": scope_label}


@supervisor_required
@require_POST
def case_share(request: HttpRequest, reference: str) -> HttpResponseBase:
    user = _user(request)
    case = case_selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    form = ShareForm(request.POST, user=user)
    if form.is_valid():
        partner = form.cleaned_data["partner"]
        try:
            services.share_cases(
                owner=case.organisation,
                partner=partner,
                cases=[case],
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at(),
                shared_by=user,
                request=request,
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            messages.success(request, _shared_message(1, partner, form.cleaned_data["scope"]))
            return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#sharing")
    return render_case_page(request, case, overrides={SECTION: {"share_form": form}}, status=400)


@supervisor_required
@require_POST
def case_share_revoke(request: HttpRequest, reference: str, share_id: int) -> HttpResponseBase:
    user = _user(request)
    case = case_selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    share = Share.objects.select_related("partner").filter(pk=share_id, case=case).first()
    if share is None:
        return not_found(request)
    back = reverse("case-detail", kwargs={"reference": case.reference}) + "#sharing"
    if share.revoked_at is None and not confirmed(request):
        return confirm_page(
            request,
            title=_("Revoke the share with %(partner)s?") % {"partner": share.partner.display_name},
            question=_("%(partner)s will no longer see case %(reference)s, from its very next request.")
            % {"partner": share.partner.display_name, "reference": case.reference},
            consequence=_("To give access again, share the case anew."),
            confirm_label=_("Revoke the share"),
            cancel_url=back,
            nav="cases",
        )
    revoked = services.revoke_shares(owner=case.organisation, shares=[share], revoked_by=user, request=request)
    if revoked:
        messages.success(
            request,
            _("The share with %(partner)s is revoked: the partner no longer sees this case.")
            % {"partner": share.partner.display_name},
        )
    else:
        messages.info(request, _("That share had already been revoked."))
    return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#sharing")


@supervisor_required
@require_http_methods(["GET", "POST"])
def case_share_bulk(request: HttpRequest) -> HttpResponseBase:
    """Share several cases at once: the cases ticked in the list, or every case the list's filter matches.

    Sharing by filter takes a confirmation step that shows the count; the count is
    checked again when confirmed, so that nothing is shared that the user did not see counted.
    """
    user = _user(request)
    by_filter = request.method == "GET" or request.POST.get("mode") == "filter"
    # Sharing by filter starts with a preview (a link, or the list's button): the count and the terms, to confirm.
    preview = by_filter and (request.method == "GET" or "expected" not in request.POST)
    if preview:
        terms = request.GET if request.method == "GET" else request.POST
        form = ShareForm(
            user=user, initial={name: terms.get(name) for name in ShareForm.base_fields if terms.get(name)}
        )
    else:
        form = ShareForm(request.POST, user=user)
    context: dict[str, Any] = {"nav": "cases", "form": form, "by_filter": by_filter, "limit": MAX_BULK_SHARE}
    if by_filter:
        raw_query = request.GET.urlencode() if request.method == "GET" else request.POST.get("filter", "")
        query = QueryDict(raw_query, mutable=True)
        for name in ShareForm.base_fields:
            query.pop(name, None)  # the link may carry the terms too; they are not filters
        filters = CaseFilter(query, queryset=case_selectors.case_rows(user), request=request)
        filter_query = filter_query_of(query)
        context.update(
            filters=filters,
            filter_query=filter_query,
            back=reverse("case-list") + (f"?{filter_query}" if filter_query else ""),
        )
        if not filters.is_valid():
            return render(request, "partners/share_cases.html", context, status=400)
        matching = selectors.cases_matching(filters.qs)
        if preview:
            context["count"] = matching.count()
            return render(request, "partners/share_cases.html", context)
        try:
            expected = int(request.POST.get("expected", ""))
        except ValueError:
            expected = -1
        if not form.is_valid():
            context["count"] = max(expected, 0)
            return render(request, "partners/share_cases.html", context, status=400)
        try:
            shares = services.share_counted_cases(
                owner=user.organisation,
                partner=form.cleaned_data["partner"],
                cases=matching,
                expected_count=expected,
                limit=MAX_BULK_SHARE,
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at(),
                shared_by=user,
                request=request,
            )
        except services.CountChanged as changed:
            context.update(count=changed.count, count_changed=True, confirmed_count=max(expected, 0))
            return render(request, "partners/share_cases.html", context, status=409)
        except ValidationError as refusal:
            form.add_service_errors(refusal)
            context["count"] = max(expected, 0)
            return render(request, "partners/share_cases.html", context, status=400)
    else:
        cases = selectors.cases_by_reference(user, request.POST.getlist("case")[:MAX_BULK_SHARE])
        context.update(cases=cases, count=len(cases), back=safe_next_url(request, reverse("case-list")))
        if not cases:
            context["nothing_selected"] = True
            return render(request, "partners/share_cases.html", context, status=400)
        if not form.is_valid():
            return render(request, "partners/share_cases.html", context, status=400)
        try:
            shares = services.share_cases(
                owner=user.organisation,
                partner=form.cleaned_data["partner"],
                cases=cases,
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at(),
                shared_by=user,
                request=request,
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
            return render(request, "partners/share_cases.html", context, status=400)
    partner = form.cleaned_data["partner"]
    messages.success(request, _shared_message(len(shares), partner, form.cleaned_data["scope"]))
    return redirect(context["back"])
