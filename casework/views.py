"""The caseworker pages: thin doors onto casework.selectors (reads) and casework.services (writes).

Permissions (DESIGN.md section 5): every page needs a signed-in user; case
pages need a role that reads cases (an analyst is refused with 403); another
organisation's case, or an unknown reference, is a 404 and never appears in
a list or a count. Creating, editing and moving cases need a role that edits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from casework import selectors, services
from casework.forms import CaseFilter, CaseForm, StatusChangeForm
from casework.models import Case
from casework.screening import find_personal_data
from partners.models import User

CASES_PER_PAGE = 50
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


def _paginate(request: HttpRequest, cases: Any) -> Page[Case]:
    paginator: Paginator[Case] = Paginator(cases, CASES_PER_PAGE)
    return paginator.get_page(request.GET.get("page"))


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
    context: dict[str, Any] = {
        "nav": "cases",
        "filters": filters,
        "can_edit": services.Actor.for_user(user).can_edit,
    }
    if not filters.is_valid():
        # A bad filter or sort value: say which, list nothing rather than something unasked for.
        return render(request, "casework/case_list.html", context, status=400)
    context["page"] = _paginate(request, filters.qs)
    context["sort"] = filters.sort_key
    return render(request, "casework/case_list.html", context)


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
                messages.success(request, _("Case %(reference)s saved.") % {"reference": updated.reference})
            return redirect("case-detail", reference=updated.reference)
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
    context = {
        "nav": "cases",
        "case": fresh,
        "conflict": conflict,
        "differences": differences,
        "is_edit": form is not None,
    }
    return render(request, "casework/conflict.html", context, status=409)


# --- detail and status ---------------------------------------------------------------


def _detail(
    request: HttpRequest, case: Case, *, status_form: StatusChangeForm | None, status: int = 200
) -> HttpResponse:
    actor = services.Actor.for_user(_user(request))
    context = {
        "nav": "cases",
        "case": case,
        "history": list(selectors.case_history(case)),
        "edits": list(selectors.case_edits(case)),
        "can_edit": actor.can_edit,
        "status_form": status_form,
    }
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
    actor = services.Actor.for_user(user)
    status_form = StatusChangeForm(case=case, actor=actor) if actor.can_edit else None
    if status_form is not None and not status_form.targets:
        status_form = None  # nowhere this user may move it
    return _detail(request, case, status_form=status_form)


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
            messages.success(
                request,
                _("Status changed to “%(status)s”.") % {"status": change.get_to_status_display()},
            )
            return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#timeline")
    return _detail(request, case, status_form=form, status=400)


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
    context = {"nav": "institutions", "institution": institution, "page": _paginate(request, cases), "sort": None}
    return render(request, "casework/institution_detail.html", context)
