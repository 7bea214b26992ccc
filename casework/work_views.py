"""A caseworker's day: follow-ups on the case page, closing them, the team view and the follow-up rules.

Thin doors onto casework.followups (writes) and casework.work (reads). Making
and closing follow-ups needs a role that edits cases; the team view, bulk
reassignment and the rules need a supervisor (accounts.permissions). Another
organisation's case or task is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.pages import forbidden, not_found
from accounts.requests import safe_next_url, signed_in_user
from casework import followups, notices, saved_filters, sections, selectors, work
from casework.models import AccessLog, Case
from casework.services import Actor, NotPermitted
from casework.task_models import Task
from casework.views import _log, case_editor_required, case_reader_required, render_case_page
from casework.work_forms import CompleteTaskForm, NewRuleForm, ReassignForm, TaskForm

SECTION = "follow-ups"
FOLLOW_UPS_PER_PAGE = 50
_user = signed_in_user


def team_lead_required(view: Any) -> Any:
    @case_reader_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not permissions.can_lead_team(_user(request)):
            return forbidden(request, _("Only a supervisor sees the team's work and changes its rules."))
        return view(request, *args, **kwargs)  # type: ignore[no-any-return]

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


# --- the case page's section -------------------------------------------------------------------


def _case_section(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    user = _user(request)
    can_work = permissions.can_work_on_tasks(user)
    form = (
        TaskForm(organisation_id=case.organisation_id, initial={"assigned_to": case.assigned_to_id})
        if can_work
        else None
    )
    return {
        "case": case,
        "tasks": work.case_tasks(case),
        "can_work": can_work,
        "task_form": form,
        "today": timezone.localdate(),
    }


def register_sections() -> None:
    sections.add_to_case_page(name=SECTION, template="casework/_case_tasks.html", context=_case_section)


@case_editor_required
@require_POST
def task_create(request: HttpRequest, reference: str) -> HttpResponseBase:
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    form = TaskForm(request.POST, organisation_id=case.organisation_id)
    if form.is_valid():
        try:
            followups.create_task(
                actor=Actor.for_user(user),
                case=case,
                kind=form.cleaned_data["kind"],
                due_on=form.cleaned_data["due_on"],
                assigned_to=form.cleaned_data["assigned_to"],
                note=form.cleaned_data["note"],
                request=request,
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            messages.success(request, _("Follow-up added."))
            return redirect(reverse("case-detail", kwargs={"reference": case.reference}) + "#follow-ups")
    return render_case_page(request, case, overrides={SECTION: {"task_form": form}}, status=400)


@case_editor_required
@require_POST
def task_done(request: HttpRequest, task_id: int) -> HttpResponseBase:
    user = _user(request)
    task = work.visible_tasks(user).select_related("case").filter(pk=task_id).first()
    if task is None:
        return not_found(request)
    form = CompleteTaskForm(request.POST)
    back = safe_next_url(request, reverse("case-detail", kwargs={"reference": task.case.reference}) + "#follow-ups")
    if form.is_valid():
        try:
            followups.complete_task(
                actor=Actor.for_user(user), task_id=task.pk, note=form.cleaned_data["note"], request=request
            )
        except followups.TaskNotFound:
            return not_found(request)
        except ValidationError as refusal:
            for message in refusal.messages:
                messages.error(request, message)
        else:
            messages.success(
                request,
                _("Follow-up done: %(kind)s, case %(reference)s.")
                % {"kind": task.get_kind_display(), "reference": task.case.reference},
            )
    else:
        for error in form.errors.get("note", []):
            messages.error(request, str(error))
    return redirect(back)


@case_editor_required
@require_GET
def my_follow_ups(request: HttpRequest) -> HttpResponseBase:
    """Every open follow-up of the reader, the most overdue first, a page at a time."""
    user = _user(request)
    tasks = work.visible_tasks(user).filter(assigned_to=user, state=Task.State.OPEN).select_related("case")
    paginator: Paginator[Task] = Paginator(tasks.order_by("due_on", "id"), FOLLOW_UPS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    _log(request, AccessLog.Action.LIST, {task.case_id: task.case for task in page.object_list}.values())
    context = {"nav": "home", "page": page, "today": timezone.localdate()}
    return render(request, "casework/my_follow_ups.html", context)


# --- the team ----------------------------------------------------------------------------------


@team_lead_required
@require_http_methods(["GET", "POST"])
def team(request: HttpRequest) -> HttpResponseBase:
    """Per caseworker: open cases, open and overdue follow-ups; hand every open case of one to another."""
    user = _user(request)
    form = ReassignForm(request.POST or None, organisation_id=user.organisation_id)
    if request.method == "POST" and form.is_valid():
        try:
            moved = followups.reassign_cases(
                actor=Actor.for_user(user),
                from_user=form.cleaned_data["from_user"],
                to_user=form.cleaned_data["to_user"],
                request=request,
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        except NotPermitted as refusal:
            return forbidden(request, str(refusal))
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)s open case given to %(user)s, with its follow-ups.",
                    "%(count)s open cases given to %(user)s, with their follow-ups.",
                    moved,
                )
                % {"count": moved, "user": form.cleaned_data["to_user"].get_username()},
            )
            return redirect("team")
    context = {
        "nav": "team",
        "rows": work.team(user, today=timezone.localdate()),
        "form": form,
    }
    return render(request, "casework/team.html", context, status=400 if form.is_bound else 200)


@team_lead_required
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponseBase:
    """The organisation's follow-up rules: change their days, switch them off or on, add one."""
    user = _user(request)
    current = sorted(followups.organisation_rules(user.organisation_id), key=lambda r: (r.kind, r.days))
    errors: list[str] = []
    new_form = NewRuleForm(request.POST or None, prefix="new")
    if request.method == "POST":
        changes: dict[int, tuple[int, bool]] = {}
        for rule in current:
            raw = request.POST.get(f"days_{rule.pk}", "")
            try:
                days = int(raw)
            except ValueError:
                errors.append(_("Give a number of days from 1 to %(max)s.") % {"max": followups.MAX_RULE_DAYS})
                continue
            changes[rule.pk] = (days, request.POST.get(f"active_{rule.pk}") == "1")
        added: list[tuple[str, int]] = []
        if new_form.has_changed():
            if new_form.is_valid() and new_form.cleaned_data["kind"] and new_form.cleaned_data["days"] is not None:
                added.append((new_form.cleaned_data["kind"], new_form.cleaned_data["days"]))
            else:
                errors.append(_("To add a rule, choose its kind and give its days."))
        if not errors:
            try:
                followups.update_rules(actor=Actor.for_user(user), changes=changes, added=added)
            except ValidationError as refusal:
                errors.extend(refusal.messages)
            else:
                messages.success(request, _("Follow-up rules saved. They apply to changes from now on."))
                return redirect("team-rules")
    context = {
        "nav": "team",
        "rules": current,
        "errors": errors,
        "new_form": new_form,
        "posted": request.POST if request.method == "POST" else None,
    }
    return render(request, "casework/team_rules.html", context, status=400 if errors else 200)


# --- notices -----------------------------------------------------------------------------------


@case_reader_required
@require_http_methods(["GET"])
def notice_list(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    found = notices.notices_of(user)
    # The page names cases: each is logged as listed.
    _log(request, AccessLog.Action.LIST, {n.case_id: n.case for n in found if n.case is not None}.values())
    context = {
        "nav": "notices",
        "notices": found,
        "unread": any(n.read_at is None for n in found) or user.unread_notices,
    }
    return render(request, "casework/notices.html", context)


@case_reader_required
@require_POST
def notices_read(request: HttpRequest) -> HttpResponseBase:
    notices.mark_all_read(user=_user(request))
    return redirect("notices")


# --- saved filters and the printable summary ----------------------------------------------------


@case_reader_required
@require_POST
def filter_save(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    query = request.POST.get("filter", "")
    try:
        saved = saved_filters.save_filter(user=user, name=request.POST.get("name", ""), query=query)
    except ValidationError as refusal:
        for message in refusal.messages:
            messages.error(request, message)
        return redirect(f"{reverse('case-list')}?{query}" if len(query) <= saved_filters.MAX_QUERY else "case-list")
    messages.success(request, _("Filter “%(name)s” saved.") % {"name": saved.name})
    return redirect(f"{reverse('case-list')}?{saved.query}")


@case_reader_required
@require_POST
def filter_delete(request: HttpRequest, filter_id: int) -> HttpResponseBase:
    if not saved_filters.delete_filter(user=_user(request), filter_id=filter_id):
        return not_found(request)
    messages.success(request, _("Saved filter deleted."))
    return redirect("case-list")


@case_reader_required
@require_GET
def case_summary(request: HttpRequest, reference: str) -> HttpResponseBase:
    """One printable page: the anonymised facts, the timeline and the follow-ups (no free text)."""
    user = _user(request)
    case = selectors.get_visible_case(user, reference)
    if case is None:
        return not_found(request)
    context = {
        "nav": "cases",
        "case": case,
        "history": list(selectors.case_history(case)),
        "tasks": work.case_tasks(case),
        "printed_at": timezone.now(),
    }
    _log(request, AccessLog.Action.VIEW, [case])
    return render(request, "casework/case_summary.html", context)
