"""The caseworker pages: thin doors onto casework.selectors (reads) and casework.services (writes).

Permissions (DESIGN.md section 5): every page needs a signed-in user; case
pages need a role that reads cases (an analyst is refused with 403); another
organisation's case, or an unknown reference, is a 404 and never appears in
a list or a count. Creating, editing and moving cases need a role that edits;
sharing with partners and reading a case's access log need a supervisor.

Every page that shows cases writes the access log (casework.audit): one row
per case shown, in one query, and none for a refused or missing case.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from casework import selectors, services
from casework.audit import log_access
from casework.forms import CaseFilter, CaseForm, ShareForm, StatusChangeForm
from casework.models import AccessLog, Case
from casework.references import normalise_reference
from casework.screening import find_personal_data
from partners import services as partner_services
from partners.models import Share, ShareScope

CASES_PER_PAGE = 50
ACCESS_LOG_PER_PAGE = 50
# One bulk share at most: beyond this, narrow the filter (and keep each write a reasonable size).
MAX_BULK_SHARE = 10_000
View = Callable[..., HttpResponseBase]


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "views below run behind login_required"
    return user


def forbidden(request: HttpRequest, message: str | None = None) -> HttpResponse:
    return render(request, "casework/forbidden.html", {"message": message}, status=403)


def not_found(request: HttpRequest) -> HttpResponse:
    # The same page for an unknown reference and for another organisation's case.
    return render(request, "casework/not_found.html", status=404)


def confirmed(request: HttpRequest) -> bool:
    """Whether a POST comes from a confirmation step (an irreversible action asks first)."""
    return request.POST.get("confirmed") == "1"


def confirm_page(
    request: HttpRequest,
    *,
    title: str,
    question: str,
    confirm_label: str,
    cancel_url: str,
    consequence: str = "",
    nav: str = "",
) -> HttpResponse:
    """Ask before doing: the same POST again, with ``confirmed=1``, does it; nothing is changed yet."""
    context = {
        "title": title,
        "question": question,
        "consequence": consequence,
        "confirm_label": confirm_label,
        "cancel_url": cancel_url,
        "action_url": request.get_full_path(),
        "nav": nav,
    }
    return render(request, "confirm.html", context)


def case_reader_required(view: View) -> View:
    """Signed in, and a role that may read case records."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not selectors.can_read_cases(_user(request)):
            return forbidden(request, _("Your role gives access to aggregate figures only, not to case records."))
        return view(request, *args, **kwargs)

    return wrapper


def case_editor_required(view: View) -> View:
    """A reader whose role may also create, edit and move cases."""

    @case_reader_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not services.Actor.for_user(_user(request)).can_edit:
            return forbidden(request, _("Your role may read cases but not create, edit or move them."))
        return view(request, *args, **kwargs)

    return wrapper


def supervisor_required(view: View) -> View:
    """A reader whose role may share cases with partners and read who accessed them."""

    @case_reader_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not selectors.can_share(_user(request)):
            return forbidden(request, _("Only a supervisor may share cases and see who accessed them."))
        return view(request, *args, **kwargs)

    return wrapper


def _paginate(request: HttpRequest, items: Any, per_page: int = CASES_PER_PAGE) -> Page[Any]:
    paginator: Paginator[Any] = Paginator(items, per_page)
    return paginator.get_page(request.GET.get("page"))


def _log(request: HttpRequest, action: str, cases: Any) -> None:
    """One access-log row per case, written in one query (nothing for no case)."""
    user = _user(request)
    log_access(
        action=action,
        door=AccessLog.Door.WEB,
        organisation_id=user.organisation_id,
        case_ids=[case.pk for case in cases],
        user=user,
        request=request,
    )


# --- home -------------------------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    if not selectors.can_read_cases(user):
        return redirect("figures")  # an analyst's home: the figures
    summary = selectors.home_summary(user, now=timezone.now())
    actor = services.Actor.for_user(user)
    return render(
        request,
        "casework/home.html",
        {"nav": "home", "summary": summary, "can_edit": actor.can_edit, "idle_days": selectors.IDLE_DAYS},
    )


# --- case list ----------------------------------------------------------------------


@case_reader_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    filters = CaseFilter(request.GET, queryset=selectors.case_rows(user), request=request)
    can_share = selectors.can_share(user)
    context: dict[str, Any] = {
        "nav": "cases",
        "filters": filters,
        "can_edit": services.Actor.for_user(user).can_edit,
        "can_share": can_share,
    }
    if not filters.is_valid():
        # A bad filter or sort value: say which, list nothing rather than something unasked for.
        return render(request, "casework/case_list.html", context, status=400)
    page = _paginate(request, filters.qs)
    _log(request, AccessLog.Action.LIST, page.object_list)
    context["page"] = page
    context["sort"] = filters.sort_key
    if can_share:
        context["share_form"] = ShareForm(user=user)
        context["filter_query"] = _filter_query(request.GET)
    return render(request, "casework/case_list.html", context)


EXPORT_LIMIT = 50_000
EXPORT_COLUMNS = (
    "reference",
    "status",
    "sex",
    "birth_year",
    "age_band",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "risk_flags",
    "last_change_at",
)


@supervisor_required
@require_GET
def case_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered case list as CSV: supervisors only, every exported case logged.

    Notes and identifiers never leave in an export: only the anonymised fields of the list.
    """
    user = _user(request)
    filters = CaseFilter(request.GET, queryset=selectors.case_rows(user).select_related("institution"), request=request)
    back = f"{reverse('case-list')}?{_filter_query(request.GET)}"
    if not filters.is_valid():
        messages.error(request, _("The filter is not valid: correct it, then export again."))
        return redirect(back)
    cases = list(filters.qs[: EXPORT_LIMIT + 1])
    if len(cases) > EXPORT_LIMIT:
        messages.error(
            request,
            _("An export holds at most %(limit)s cases: narrow the filter.")
            % {"limit": formats.number_format(EXPORT_LIMIT, force_grouping=True)},
        )
        return redirect(back)
    log_access(
        action=AccessLog.Action.EXPORT,
        door=AccessLog.Door.EXPORT,
        organisation_id=user.organisation_id,
        case_ids=[case.pk for case in cases],
        user=user,
        request=request,
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cases-{timezone.localdate().isoformat()}.csv"'
    writer = csv.writer(response)
    writer.writerow(EXPORT_COLUMNS)
    for case in cases:
        writer.writerow(
            [
                case.reference,
                case.status,
                case.sex,
                case.birth_year or "",
                case.age_band,
                case.oblast,
                case.reported_on.isoformat(),
                case.displaced_on.isoformat() if case.displaced_on else "",
                case.placement,
                case.institution.code if case.institution else "",
                " ".join(case.risk_flags),
                case.last_change_at.isoformat() if case.last_change_at else "",
            ]
        )
    return response


def _filter_query(query: QueryDict) -> str:
    """The list's filters and sort as a query string, without the page number."""
    kept = query.copy()
    kept.pop("page", None)
    return kept.urlencode()


# --- create and edit ------------------------------------------------------------------


@case_editor_required
@require_http_methods(["GET", "POST"])
def case_create(request: HttpRequest) -> HttpResponseBase:
    actor = services.Actor.for_user(_user(request))
    form = CaseForm(request.POST or None, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            case = services.create_case(actor=actor, values=form.case_values(), identifiers=form.identifiers())
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            _log(request, AccessLog.Action.CREATE, [case])
            messages.success(request, _("Case %(reference)s created.") % {"reference": case.reference})
            return redirect("case-detail", reference=case.reference)
    status = 400 if form.is_bound else 200
    return render(request, "casework/case_form.html", {"nav": "cases", "form": form, "case": None}, status=status)


@case_editor_required
@require_http_methods(["GET", "POST"])
def case_edit(request: HttpRequest, reference: str) -> HttpResponseBase:
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    actor = services.Actor.for_user(user)
    form = CaseForm(request.POST or None, actor=actor, case=case)
    if request.method == "POST" and form.is_valid():
        expected = form.cleaned_data["version"]
        try:
            with transaction.atomic():
                updated = services.update_case(
                    case=case, actor=actor, expected_version=expected, values=form.case_values()
                )
                identifiers = form.identifiers()
                if identifiers:
                    services.add_identifiers(case=updated, actor=actor, identifiers=identifiers)
        except services.StaleVersion as conflict:
            return _conflict(request, case=case, conflict=conflict, form=form)
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            if updated.version == expected and not identifiers:
                messages.info(request, _("Nothing to save: no field was changed."))
            else:
                _log(request, AccessLog.Action.EDIT, [updated])
                messages.success(request, _("Case %(reference)s saved.") % {"reference": updated.reference})
            return redirect("case-detail", reference=updated.reference)
    if not form.is_bound:
        _log(request, AccessLog.Action.VIEW, [case])  # the form shows the record
    status = 400 if form.is_bound else 200
    return render(request, "casework/case_form.html", {"nav": "cases", "form": form, "case": case}, status=status)


def _display(case: Case, name: str, value: Any) -> str:
    """A field's value as the case page shows it."""
    if name.startswith("risk_"):
        return _("yes") if value else _("no")
    if value in (None, ""):
        return "—"
    field = Case._meta.get_field(name)
    choices = getattr(field, "choices", None)
    if choices:
        return str(dict(choices).get(value, value))
    if name == "notes" and find_personal_data(str(value)):
        return _("(not shown: it looks like it holds personal data)")
    if isinstance(value, dt.date):
        return formats.date_format(value)
    return str(value)


def _conflict(
    request: HttpRequest, *, case: Case, conflict: services.StaleVersion, form: CaseForm | None = None
) -> HttpResponse:
    """Nothing was written: show what changed meanwhile, and the values the user tried to save."""
    fresh = conflict.case
    differences: list[dict[str, Any]] = []
    if form is not None:
        for name, mine in form.case_values().items():
            current = getattr(fresh, name)
            if mine != current:
                differences.append(
                    {
                        "label": Case._meta.get_field(name).verbose_name,  # type: ignore[union-attr]
                        "current": _display(fresh, name, current),
                        "mine": _display(fresh, name, mine),
                    }
                )
    _log(request, AccessLog.Action.VIEW, [fresh])  # the page shows the record as it is now
    context = {
        "nav": "cases",
        "case": fresh,
        "conflict": conflict,
        "differences": differences,
        "is_edit": form is not None,
    }
    return render(request, "casework/conflict.html", context, status=409)


# --- detail and status ---------------------------------------------------------------


def _status_form(case: Case, actor: services.Actor) -> StatusChangeForm | None:
    """A blank status form, or None when this user may not move the case anywhere."""
    status_form = StatusChangeForm(case=case, actor=actor) if actor.can_edit else None
    if status_form is not None and not status_form.targets:
        return None
    return status_form


def _detail(
    request: HttpRequest,
    case: Case,
    *,
    status_form: StatusChangeForm | None,
    share_form: ShareForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    actor = services.Actor.for_user(user)
    can_share = selectors.can_share(user)
    context: dict[str, Any] = {
        "nav": "cases",
        "case": case,
        "history": list(selectors.case_history(case)),
        "edits": list(selectors.case_edits(case)),
        "can_edit": actor.can_edit,
        "status_form": status_form,
        "can_share": can_share,
    }
    if can_share:
        context["shares"] = list(selectors.live_shares(case))
        context["share_form"] = share_form or ShareForm(user=user)
    _log(request, AccessLog.Action.VIEW, [case])
    return render(request, "casework/case_detail.html", context, status=status)


@case_reader_required
@require_GET
def case_detail(request: HttpRequest, reference: str) -> HttpResponseBase:
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    if case.reference != reference:
        return redirect("case-detail", reference=case.reference)  # e.g. typed in lower case
    return _detail(request, case, status_form=_status_form(case, services.Actor.for_user(user)))


def _posted_version(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return None


@case_editor_required
@require_POST
def case_status(request: HttpRequest, reference: str) -> HttpResponseBase:
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    posted_version = _posted_version(request)
    if posted_version is not None and posted_version != case.version:
        # The form offered moves from a status the case has since left: say so before judging the move.
        stale = services.StaleVersion(
            case=case, expected_version=posted_version, changes=services.changes_since(case, posted_version)
        )
        return _conflict(request, case=case, conflict=stale)
    form = StatusChangeForm(request.POST, case=case, actor=services.Actor.for_user(user))
    if form.is_valid():
        try:
            change = form.save()
        except services.StaleVersion as conflict:
            return _conflict(request, case=case, conflict=conflict)
        if change is not None:
            _log(request, AccessLog.Action.STATUS_CHANGE, [case])
            messages.success(
                request,
                _("Status changed to “%(status)s”.") % {"status": change.get_to_status_display()},
            )
            return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#timeline")
    return _detail(request, case, status_form=form, status=400)


# --- sharing with partners ------------------------------------------------------------


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
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    form = ShareForm(request.POST, user=user)
    if form.is_valid():
        partner = form.cleaned_data["partner"]
        try:
            partner_services.share_cases(
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
    status_form = _status_form(case, services.Actor.for_user(user))
    return _detail(request, case, status_form=status_form, share_form=form, status=400)


@supervisor_required
@require_POST
def case_share_revoke(request: HttpRequest, reference: str, share_id: int) -> HttpResponseBase:
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
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
    revoked = partner_services.revoke_shares(owner=case.organisation, shares=[share], revoked_by=user, request=request)
    if revoked:
        messages.success(
            request,
            _("The share with %(partner)s is revoked: the partner no longer sees this case.")
            % {"partner": share.partner.display_name},
        )
    else:
        messages.info(request, _("That share had already been revoked."))
    return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#sharing")


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


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
        filters = CaseFilter(query, queryset=selectors.case_rows(user), request=request)
        filter_query = _filter_query(query)
        context.update(
            filters=filters,
            filter_query=filter_query,
            back=reverse("case-list") + (f"?{filter_query}" if filter_query else ""),
        )
        if not filters.is_valid():
            return render(request, "casework/share_cases.html", context, status=400)
        # The ids only: sharing needs nothing else, and thousands of full rows would be wasted memory.
        matching = filters.qs.select_related(None).order_by().only("id", "organisation_id")
        if preview:
            context["count"] = matching.count()
            return render(request, "casework/share_cases.html", context)
        cases = list(matching[: MAX_BULK_SHARE + 1])
        context["count"] = len(cases)
        try:
            expected = int(request.POST.get("expected", ""))
        except ValueError:
            expected = -1
        if len(cases) != expected:
            context.update(count_changed=True, confirmed_count=max(expected, 0))
            return render(request, "casework/share_cases.html", context, status=409)
    else:
        references = [normalise_reference(value) for value in request.POST.getlist("case")[:MAX_BULK_SHARE]]
        cases = list(selectors.visible_cases(user).filter(reference__in=references).order_by("reference"))
        context.update(cases=cases, count=len(cases), back=_safe_next(request, reverse("case-list")))
        if not cases:
            context["nothing_selected"] = True
            return render(request, "casework/share_cases.html", context, status=400)
    if not cases or len(cases) > MAX_BULK_SHARE:
        return render(request, "casework/share_cases.html", context, status=400)
    if not form.is_valid():
        return render(request, "casework/share_cases.html", context, status=400)
    partner = form.cleaned_data["partner"]
    try:
        partner_services.share_cases(
            owner=user.organisation,
            partner=partner,
            cases=cases,
            scope=form.cleaned_data["scope"],
            expires_at=form.expires_at(),
            shared_by=user,
            request=request,
        )
    except ValidationError as refusal:
        form.add_service_errors(refusal)
        return render(request, "casework/share_cases.html", context, status=400)
    messages.success(request, _shared_message(len(cases), partner, form.cleaned_data["scope"]))
    return redirect(context["back"])


@supervisor_required
@require_GET
def case_access_log(request: HttpRequest, reference: str) -> HttpResponseBase:
    """Who read or changed the case, by which door, when and from where (never what they saw)."""
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    page = _paginate(request, selectors.case_access_log(case), ACCESS_LOG_PER_PAGE)
    return render(request, "casework/case_access_log.html", {"nav": "cases", "case": case, "page": page})


# --- institutions --------------------------------------------------------------------------


@case_reader_required
@require_GET
def institution_list(request: HttpRequest) -> HttpResponseBase:
    institutions = selectors.institutions_with_counts(_user(request))
    return render(request, "casework/institution_list.html", {"nav": "institutions", "institutions": institutions})


@case_reader_required
@require_GET
def institution_detail(request: HttpRequest, code: str) -> HttpResponseBase:
    user = _user(request)
    institution = selectors.get_institution(code)
    if institution is None:
        return not_found(request)
    cases = selectors.sort_cases(selectors.case_rows(user).filter(institution=institution), "-changed")
    page = _paginate(request, cases)
    _log(request, AccessLog.Action.LIST, page.object_list)
    context = {"nav": "institutions", "institution": institution, "page": page, "sort": None}
    return render(request, "casework/institution_detail.html", context)
