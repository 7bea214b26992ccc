"""The caseworker pages: thin doors onto casework.selectors (reads) and casework.services (writes).

Permissions (accounts.permissions): every page needs a signed-in user; case
pages need a role that reads cases (an analyst is refused with 403); another
organisation's case, or an unknown reference, is a 404 and never appears in
a list or a count. Creating, editing and moving cases need a role that edits;
reading a case's access log and exporting need a supervisor. Other apps add
sections to the case page and the case list (casework.sections): partners'
sharing is one.

Every page that shows cases writes the access log (casework.audit): one row
per case shown, in one query, and none for a refused or missing case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.pages import forbidden, not_found
from accounts.requests import signed_in_user
from casework import exports, identifying, saved_filters, sections, selectors, services, work
from casework.audit import log_access
from casework.forms import CaseFilter, CaseForm, StatusChangeForm
from casework.models import AccessLog, Case
from casework.paging import CappedPaginator, capped_page
from casework.screening import find_personal_data

CASES_PER_PAGE = 50
ACCESS_LOG_PER_PAGE = 50
View = Callable[..., HttpResponseBase]
_user = signed_in_user


def case_reader_required(view: View) -> View:
    """Signed in, and a role that may read case records."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not permissions.can_read_cases(_user(request)):
            return forbidden(request, _("Your role gives access to aggregate figures only, not to case records."))
        return view(request, *args, **kwargs)

    return wrapper


def case_editor_required(view: View) -> View:
    """A reader whose role may also create, edit and move cases."""

    @case_reader_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not permissions.can_edit_cases(_user(request)):
            return forbidden(request, _("Your role may read cases but not create, edit or move them."))
        return view(request, *args, **kwargs)

    return wrapper


def supervisor_required(view: View) -> View:
    """A reader whose role may share cases with partners, export them and read who accessed them."""

    @case_reader_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not permissions.can_read_access_log(_user(request)):
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
    if not permissions.can_read_cases(user):
        return redirect("figures")  # an analyst's home: the figures
    summary = selectors.home_summary(user, now=timezone.now())
    # The page names cases (references and statuses): each is logged as listed, once.
    shown = {case.pk: case for case in (*summary.idle_cases, *summary.assigned_cases)}
    shown.update((change.case_id, change.case) for change in summary.latest_changes)
    # "My work" (casework.work): the reader's follow-ups and what others changed on their cases.
    my_work, work_sections = None, []
    if permissions.can_work_on_tasks(user):
        my_work = work.my_work(user, today=timezone.localdate(), now=timezone.now())
        shown.update((case.pk, case) for case in my_work.cases)
        work_sections = sections.my_work_sections(request)
        for section in work_sections:
            shown.update((case.pk, case) for case in section.context.get("cases", ()))
    _log(request, AccessLog.Action.LIST, shown.values())
    context = {
        "nav": "home",
        "summary": summary,
        "work": my_work,
        "work_sections": work_sections,
        "can_edit": permissions.can_edit_cases(user),
        "idle_days": selectors.IDLE_DAYS,
    }
    return render(request, "casework/home.html", context)


# --- case list ----------------------------------------------------------------------


@case_reader_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    filters = CaseFilter(request.GET, queryset=selectors.case_rows(user), request=request)
    context: dict[str, Any] = {
        "nav": "cases",
        "filters": filters,
        "can_edit": permissions.can_edit_cases(user),
        "can_export": permissions.can_export_cases(user),
        "can_import": permissions.can_import_cases(user),
        "saved_filters": saved_filters.saved_filters(user),
        "filter_query": filter_query_of(request.GET),
    }
    if not filters.is_valid():
        # A bad filter or sort value: say which, list nothing rather than something unasked for.
        return render(request, "casework/case_list.html", context, status=400)
    # Counted no further than the page needs (casework.paging): "more than 1,000 cases" past the cap.
    page = capped_page(filters.qs, request.GET.get("page"), CASES_PER_PAGE)
    _log(request, AccessLog.Action.LIST, page.object_list)
    filter_query = filter_query_of(request.GET)
    paginator = cast(CappedPaginator, page.paginator)
    context.update(
        page=page,
        sort=filters.sort_key,
        filter_query=filter_query,
        sections=sections.case_list_sections(
            request,
            sections.CaseListState(
                filter_query=filter_query, count=paginator.counted, count_is_exact=paginator.count_is_exact
            ),
        ),
    )
    return render(request, "casework/case_list.html", context)


@supervisor_required
@require_GET
def case_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered case list as CSV: supervisors only, every exported case logged (casework.exports)."""
    user = _user(request)
    filters = CaseFilter(request.GET, queryset=selectors.case_rows(user), request=request)
    back = f"{reverse('case-list')}?{filter_query_of(request.GET)}"
    if not filters.is_valid():
        messages.error(request, _("The filter is not valid: correct it, then export again."))
        return redirect(back)
    try:
        cases = exports.export_cases(user=user, cases=filters.qs, request=request)
    except exports.ExportTooLarge:
        messages.error(
            request,
            _("An export holds at most %(limit)s cases: narrow the filter.")
            % {"limit": formats.number_format(exports.EXPORT_LIMIT, force_grouping=True)},
        )
        return redirect(back)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="cases-{timezone.localdate().isoformat()}.csv"'
    exports.write_csv(cases, response)
    return response


def filter_query_of(query: QueryDict) -> str:
    """The list's filters and sort as a query string, without the page number."""
    kept = query.copy()
    kept.pop("page", None)
    return kept.urlencode()


# --- create and edit ------------------------------------------------------------------


# Identifiers and identifying details never reach an error report (Django's reports leave these out).
_TYPED_IDENTIFIERS = ("identifier_register_number", *identifying.DETAIL_FIELDS)


@sensitive_post_parameters(*_TYPED_IDENTIFIERS)
@case_editor_required
@require_http_methods(["GET", "POST"])
def case_create(request: HttpRequest) -> HttpResponseBase:
    actor = services.Actor.for_user(_user(request))
    form = CaseForm(request.POST or None, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            case = services.create_case(
                actor=actor, values=form.case_values(), identifiers=form.identifiers(), details=form.details()
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            _log(request, AccessLog.Action.CREATE, [case])
            messages.success(request, _("Case %(reference)s created.") % {"reference": case.reference})
            return redirect("case-detail", reference=case.reference)
    status = 400 if form.is_bound else 200
    return render(request, "casework/case_form.html", {"nav": "cases", "form": form, "case": None}, status=status)


@sensitive_post_parameters(*_TYPED_IDENTIFIERS)
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
            details = form.details()
            with transaction.atomic():
                updated = services.update_case(
                    case=case, actor=actor, expected_version=expected, values=form.case_values(), details=details
                )
                identifiers = form.identifiers()
                if identifiers:
                    services.add_identifiers(case=updated, actor=actor, identifiers=identifiers)
        except services.StaleVersion as conflict:
            return _conflict(request, case=case, conflict=conflict, form=form)
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            if updated.version == expected and not identifiers and not details:
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


def render_case_page(
    request: HttpRequest,
    case: Case,
    *,
    status_form: StatusChangeForm | bool | None = True,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The case page. ``status_form`` True: a blank one when the reader may move the case.
    ``overrides``: parts of a section's context (another app's form sent back with its errors)."""
    user = _user(request)
    actor = services.Actor.for_user(user)
    context: dict[str, Any] = {
        "nav": "cases",
        "case": case,
        "history": list(selectors.case_history(case)),
        "edits": list(selectors.case_edits(case)),
        "can_edit": actor.can_edit,
        "can_read_access_log": permissions.can_read_access_log(user),
        "status_form": _status_form(case, actor) if status_form is True else status_form or None,
        "sections": sections.case_page_sections(request, case, overrides=overrides),
    }
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
    return render_case_page(request, case)


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
    return render_case_page(request, case, status_form=form, status=400)


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
