"""The list pages: thin doors onto partners.lists.selectors (reads) and services (writes).

Who may do what is asked of accounts.permissions: every reader of cases sees
the organisation's lists; supervisors compose, send and close them;
caseworkers and supervisors record answers. Another organisation's list is a
404. Every page that shows cases logs them (one row per case shown).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.pages import confirm_page, confirmed, forbidden, not_found
from accounts.requests import safe_next_url, signed_in_user
from casework import jobs
from casework import selectors as case_selectors
from casework import services as case_services
from casework.audit import log_access
from casework.forms import CaseFilter
from casework.models import AccessLog, Case
from casework.references import normalise_reference
from casework.views import case_reader_required, filter_query_of
from partners.lists import selectors, services, sheet_jobs, sheets
from partners.lists.forms import AnswerForm, NewListForm, ReferencesForm, SendForm, TargetForm
from partners.models import AnswerKind, AnswerSheetJob, CaseList, ListItem, ListState

ITEMS_PER_PAGE = 50
_user = signed_in_user


def _log(request: HttpRequest, action: str, case_ids: list[int]) -> None:
    user = _user(request)
    log_access(
        action=action,
        door=AccessLog.Door.WEB,
        organisation_id=user.organisation_id,
        case_ids=case_ids,
        user=user,
        request=request,
    )


def _list_url(case_list: CaseList) -> str:
    return reverse("list-detail", kwargs={"list_id": case_list.pk})


def _composer_only(request: HttpRequest, case_list: CaseList | None = None) -> HttpResponse | None:
    user = _user(request)
    if not permissions.can_compose_lists(user, case_list.organisation_id if case_list else None):
        return forbidden(request, _("Only a supervisor may compose, send or close lists."))
    return None


def _answer_counts(case_list: CaseList) -> list[tuple[str, str, int]]:
    """(filter value, label, count) for the list's items by latest answer; the unanswered first."""
    rows = [("none", _("No answer recorded"), getattr(case_list, "count_unanswered", 0))]
    rows += [(kind, str(label), getattr(case_list, f"count_{kind}", 0)) for kind, label in AnswerKind.choices]
    return rows


# --- the lists page ------------------------------------------------------------------


@case_reader_required
@require_GET
def list_index(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    lists = list(
        selectors.with_answer_counts(selectors.organisation_lists(user)).order_by(
            "intermediary__name", "-sent_on", "-id"
        )
    )
    groups: dict[int, dict[str, Any]] = {}
    for case_list in lists:
        group = groups.setdefault(case_list.intermediary_id, {"intermediary": case_list.intermediary, "lists": []})
        group["lists"].append(case_list)
        case_list.answer_counts = [row for row in _answer_counts(case_list) if row[2]]  # type: ignore[attr-defined]
    today = timezone.localdate()
    waiting = [
        (days, selectors.waiting_items(organisation_id=user.organisation_id, days=days, today=today).count())
        for days in selectors.WAITING_DAYS
    ]
    context = {
        "nav": "lists",
        "groups": list(groups.values()),
        "waiting": waiting,
        "can_compose": permissions.can_compose_lists(user),
        "form": NewListForm(),
    }
    return render(request, "partners/lists/index.html", context)


@case_reader_required
@require_POST
def list_create(request: HttpRequest) -> HttpResponseBase:
    refused = _composer_only(request)
    if refused:
        return refused
    user = _user(request)
    form = NewListForm(request.POST)
    if form.is_valid():
        try:
            made = services.create_list(
                organisation=user.organisation,
                intermediary=form.cleaned_data["intermediary"],
                created_by=user,
                note=form.cleaned_data["note"],
            )
        except ValidationError as refusal:
            form.add_service_errors(refusal)
        else:
            messages.success(request, _("Draft list %(id)s created: add its cases, then send it.") % {"id": made.pk})
            return redirect(_list_url(made))
    return render(request, "partners/lists/new.html", {"nav": "lists", "form": form}, status=400)


# --- one list ----------------------------------------------------------------------


def _answer_filter(request: HttpRequest) -> tuple[str | None, bool]:
    """The answer to filter by ("" for none recorded), and whether the value was understood."""
    wanted = request.GET.get("answer")
    if wanted is None or wanted == "":
        return None, True
    if wanted == "none":
        return "", True
    return (wanted, True) if wanted in AnswerKind.values else (None, False)


@case_reader_required
@require_GET
def list_detail(request: HttpRequest, list_id: int) -> HttpResponseBase:
    user = _user(request)
    found = selectors.get_organisation_list(user, list_id)
    if found is None:
        return not_found(request)
    case_list = selectors.with_answer_counts(CaseList.objects.filter(pk=found.pk)).select_related(
        "intermediary", "organisation", "sent_by", "closed_by"
    )[0]
    answer, understood = _answer_filter(request)
    items = selectors.list_items(case_list, answer=answer)
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    _log(request, AccessLog.Action.LIST, [item.case_id for item in page.object_list])
    can_compose = permissions.can_compose_lists(user, case_list.organisation_id)
    unread = case_list.has_unread_answers
    services.mark_answers_seen(case_list=case_list, user=user)
    context = {
        "nav": "lists",
        "case_list": case_list,
        "page": page,
        "answer": request.GET.get("answer", ""),
        "bad_filter": not understood,
        "answer_counts": _answer_counts(case_list),
        "can_compose": can_compose,
        "can_answer": permissions.can_record_answers(user, case_list.organisation_id) and case_list.is_open,
        "unread": unread,
        "references_form": ReferencesForm() if can_compose and case_list.state == ListState.DRAFT else None,
        "send_form": SendForm() if can_compose and case_list.state == ListState.DRAFT else None,
    }
    return render(request, "partners/lists/detail.html", context, status=400 if not understood else 200)


def _own_list(request: HttpRequest, list_id: int) -> CaseList | None:
    return selectors.get_organisation_list(_user(request), list_id)


@case_reader_required
@require_POST
def list_add_references(request: HttpRequest, list_id: int) -> HttpResponseBase:
    """Pasted references: every one must be a case of the organisation, or nothing is added."""
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    refused = _composer_only(request, case_list)
    if refused:
        return refused
    user = _user(request)
    form = ReferencesForm(request.POST)
    if form.is_valid():
        references: list[str] = form.cleaned_data["references"]
        cases = list(
            case_selectors.visible_cases(user)
            .filter(reference__in=references)
            .only("id", "reference", "organisation_id")
        )
        unknown = sorted(set(references) - {case.reference for case in cases})
        if unknown:
            form.add_error(
                "references",
                _("Nothing was added: your organisation has no case %(references)s.")
                % {"references": ", ".join(unknown[:20]) + ("…" if len(unknown) > 20 else "")},
            )
        else:
            try:
                added = services.add_cases(case_list=case_list, cases=cases, by=user)
            except ValidationError as refusal:
                form.add_service_errors(refusal)
            else:
                messages.success(request, _added_message(added, len(cases)))
                return redirect(_list_url(case_list))
    context = {"nav": "lists", "case_list": case_list, "form": form}
    return render(request, "partners/lists/add_references.html", context, status=400)


def _added_message(added: int, asked: int) -> str:
    text = ngettext("%(count)s case added to the list.", "%(count)s cases added to the list.", added) % {
        "count": formats.number_format(added, force_grouping=True)
    }
    if asked > added:
        text += " " + ngettext("%(count)s was on it already.", "%(count)s were on it already.", asked - added) % {
            "count": formats.number_format(asked - added, force_grouping=True)
        }
    return text


@case_reader_required
@require_POST
def list_remove(request: HttpRequest, list_id: int) -> HttpResponseBase:
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    refused = _composer_only(request, case_list)
    if refused:
        return refused
    references = [normalise_reference(value) for value in request.POST.getlist("case")[: services.MAX_LIST_ITEMS]]
    ids = list(
        ListItem.objects.filter(case_list=case_list, case__reference__in=references).values_list("case_id", flat=True)
    )
    try:
        removed = services.remove_cases(case_list=case_list, case_ids=ids, by=_user(request))
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(
            request,
            ngettext("%(count)s case removed from the list.", "%(count)s cases removed from the list.", removed)
            % {"count": removed},
        )
    return redirect(_list_url(case_list))


@case_reader_required
@require_POST
def list_send(request: HttpRequest, list_id: int) -> HttpResponseBase:
    """Send a draft, after a confirmation step that says what sending does."""
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    refused = _composer_only(request, case_list)
    if refused:
        return refused
    form = SendForm(request.POST)
    count = ListItem.objects.filter(case_list=case_list).count()
    context: dict[str, Any] = {"nav": "lists", "case_list": case_list, "form": form, "count": count}
    if not form.is_valid():
        return render(request, "partners/lists/send.html", context, status=400)
    if not confirmed(request):
        return render(request, "partners/lists/send.html", {**context, "confirming": True})
    try:
        services.send_list(
            case_list=case_list, sent_on=form.cleaned_data["sent_on"], by=_user(request), request=request
        )
    except ValidationError as refusal:
        form.add_service_errors(refusal)
        return render(request, "partners/lists/send.html", context, status=400)
    messages.success(
        request,
        _("List %(id)s is sent: %(intermediary)s can now see its cases and answer, until you close the list.")
        % {"id": case_list.pk, "intermediary": case_list.intermediary.display_name},
    )
    return redirect(_list_url(case_list))


@case_reader_required
@require_POST
def list_close(request: HttpRequest, list_id: int) -> HttpResponseBase:
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    refused = _composer_only(request, case_list)
    if refused:
        return refused
    if case_list.state == ListState.SENT and not confirmed(request):
        return confirm_page(
            request,
            title=_("Close list %(id)s?") % {"id": case_list.pk},
            question=_("%(intermediary)s will no longer see this list or record answers on it.")
            % {"intermediary": case_list.intermediary.display_name},
            consequence=_(
                "Its cases stay shared only where another open list or a share of your own keeps them. "
                "A closed list cannot be opened again."
            ),
            confirm_label=_("Close the list"),
            cancel_url=_list_url(case_list),
            nav="lists",
        )
    try:
        services.close_list(case_list=case_list, by=_user(request), request=request)
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(request, _("List %(id)s is closed.") % {"id": case_list.pk})
    return redirect(_list_url(case_list))


# --- one item: its answers ---------------------------------------------------------------


@case_reader_required
@require_http_methods(["GET", "POST"])
def list_item(request: HttpRequest, list_id: int, reference: str) -> HttpResponseBase:
    user = _user(request)
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    item = (
        ListItem.objects.filter(case_list=case_list, case__reference=normalise_reference(reference))
        .select_related("case")
        .first()
    )
    if item is None:
        return not_found(request)
    can_answer = permissions.can_record_answers(user, case_list.organisation_id) and case_list.is_open
    form = AnswerForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if not can_answer:
            if not case_list.is_open:
                messages.error(request, _("Answers are recorded on sent lists only, not on a draft or a closed list."))
                return redirect(request.path)
            return forbidden(request, _("Your role cannot record answers."))
        if form.is_valid():
            try:
                made = services.record_answer(
                    case_list=case_list,
                    case=item.case,
                    answer=form.cleaned_data["answer"],
                    answered_on=form.cleaned_data["answered_on"],
                    note=form.cleaned_data["note"],
                    answerer=services.Answerer(user=user),
                    request=request,
                )
            except ValidationError as refusal:
                form.add_service_errors(refusal)
            except (PermissionDenied, case_services.NotPermitted) as refusal:
                return forbidden(request, str(refusal))
            except services.ListNotFound:
                return not_found(request)
            else:
                text = _("Answer recorded: %(answer)s.") % {"answer": made.get_answer_display()}
                if made.status_change is not None:
                    text += " " + _("The case is now “%(status)s”.") % {
                        "status": made.status_change.get_to_status_display()
                    }
                messages.success(request, text)
                return redirect(request.path)
        status = 400
    else:
        _log(request, AccessLog.Action.VIEW, [item.case_id])
    context = {
        "nav": "lists",
        "case_list": case_list,
        "item": item,
        "answers": list(selectors.item_answers(item)),
        "form": form if can_answer else None,
    }
    return render(request, "partners/lists/item.html", context, status=status)


# --- waiting --------------------------------------------------------------------------


@case_reader_required
@require_GET
def list_waiting(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    try:
        days = int(request.GET.get("days", "90"))
    except ValueError:
        days = -1
    if days not in selectors.WAITING_DAYS:
        days = selectors.WAITING_DAYS[-1]
        messages.info(request, _("Choose 30, 60 or 90 days."))
    items = selectors.waiting_items(organisation_id=user.organisation_id, days=days, today=timezone.localdate())
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    _log(request, AccessLog.Action.LIST, [item.case_id for item in page.object_list])
    context = {"nav": "lists", "days": days, "choices": selectors.WAITING_DAYS, "page": page}
    return render(request, "partners/lists/waiting.html", context)


# --- from the case list: the ticked cases, or every case a filter matches ------------------


@case_reader_required
@require_POST
def list_add_cases(request: HttpRequest) -> HttpResponseBase:
    """Put cases on a list: those ticked, or every case the filter matches after a confirmed count."""
    refused = _composer_only(request)
    if refused:
        return refused
    user = _user(request)
    form = TargetForm(request.POST, user=user)
    by_filter = request.POST.get("mode") == "filter"
    context: dict[str, Any] = {"nav": "lists", "form": form, "by_filter": by_filter, "limit": services.MAX_LIST_ITEMS}
    if by_filter:
        query = QueryDict(request.POST.get("filter", ""))
        filters = CaseFilter(query, queryset=case_selectors.case_rows(user), request=request)
        filter_query = filter_query_of(query)
        context.update(filters=filters, filter_query=filter_query, back=reverse("case-list") + f"?{filter_query}")
        if not filters.is_valid():
            return render(request, "partners/lists/add_cases.html", context, status=400)
        matching = filters.qs.select_related(None).order_by().only("id", "organisation_id")
        if "expected" not in request.POST:
            context["count"] = matching.count()
            return render(request, "partners/lists/add_cases.html", context)
        try:
            expected = int(request.POST.get("expected", ""))
        except ValueError:
            expected = -1
        chosen = list(matching[: services.MAX_LIST_ITEMS + 1])
        if len(chosen) != expected:
            context.update(count=len(chosen), count_changed=True, confirmed_count=max(expected, 0))
            return render(request, "partners/lists/add_cases.html", context, status=409)
        cases: list[Case] = chosen
    else:
        references = [normalise_reference(value) for value in request.POST.getlist("case")[: services.MAX_LIST_ITEMS]]
        cases = list(case_selectors.visible_cases(user).filter(reference__in=references).order_by("reference"))
        context.update(cases=cases, count=len(cases), back=safe_next_url(request, reverse("case-list")))
        if not cases:
            context["nothing_selected"] = True
            return render(request, "partners/lists/add_cases.html", context, status=400)
    if not form.is_valid():
        context.setdefault("count", len(cases))
        return render(request, "partners/lists/add_cases.html", context, status=400)
    target, intermediary = form.chosen()
    try:
        if target is None:
            assert intermediary is not None
            target = services.create_list(
                organisation=user.organisation, intermediary=intermediary, created_by=user, cases=cases
            )
            added = len(cases)
        else:
            added = services.add_cases(case_list=target, cases=cases, by=user)
    except ValidationError as refusal:
        form.add_service_errors(refusal)
        context.setdefault("count", len(cases))
        return render(request, "partners/lists/add_cases.html", context, status=400)
    messages.success(request, _added_message(added, len(cases)))
    return redirect(_list_url(target))


# --- the sheet: export for sending, an answered sheet uploaded back ---------------------------

RECENT_SHEETS = 5


@case_reader_required
@require_GET
def list_export(request: HttpRequest, list_id: int, fmt: str) -> HttpResponseBase:
    case_list = _own_list(request, list_id)
    if case_list is None or fmt not in {"csv", "xlsx"}:
        return not_found(request)
    if not permissions.can_compose_lists(_user(request), case_list.organisation_id):
        return forbidden(request, _("Only a supervisor may export a list."))
    items = sheets.export_items(case_list=case_list, user=_user(request), request=request)
    filename = f"list-{case_list.pk}-{case_list.intermediary.slug}.{fmt}"
    if fmt == "csv":
        response = HttpResponse(sheets.to_csv(items), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(
            sheets.to_xlsx(items, case_list=case_list),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _upload_page(request: HttpRequest, case_list: CaseList, **context: Any) -> dict[str, Any]:
    recent = (
        AnswerSheetJob.objects.filter(case_list=case_list)
        .defer("answers", "problems", "kind_counts")
        .select_related("uploaded_by")
        .order_by("-created_at")[:RECENT_SHEETS]
    )
    return {"nav": "lists", "case_list": case_list, "recent": recent, **context}


@case_reader_required
@require_http_methods(["GET", "POST"])
def list_upload(request: HttpRequest, list_id: int) -> HttpResponseBase:
    """An answered sheet: read here, then checked and recorded by tasks (the job's page shows where it is)."""
    user = _user(request)
    case_list = _own_list(request, list_id)
    if case_list is None:
        return not_found(request)
    if not permissions.can_record_answers(user, case_list.organisation_id):
        return forbidden(request, _("Your role cannot record answers."))
    template = "partners/lists/upload.html"
    if not case_list.is_open:
        context = _upload_page(request, case_list, closed=True)
        return render(request, template, context, status=200 if request.method == "GET" else 400)
    if request.method == "GET":
        return render(request, template, _upload_page(request, case_list))
    upload = request.FILES.get("sheet")
    if upload is None:
        problems = [_("Choose the answered sheet (XLSX or CSV) to upload.")]
        return render(request, template, _upload_page(request, case_list, problems=problems), status=400)
    name = (upload.name or "sheet").rsplit("/", 1)[-1][:100]
    if upload.size is not None and upload.size > sheets.MAX_UPLOAD_BYTES:
        problems = [f"{name}: " + _("The file is larger than 5 MB.")]
        return render(request, template, _upload_page(request, case_list, problems=problems), status=400)
    try:
        job = sheet_jobs.start(case_list=case_list, user=user, name=name, data=upload.read(sheets.MAX_UPLOAD_BYTES + 1))
    except sheet_jobs.QueueUnavailable as refused:
        # Not a problem of the file: said as it is, not under "correct every problem in the file".
        return render(request, template, _upload_page(request, case_list, unavailable=str(refused)), status=503)
    return redirect(_job_url(job))


def _job_url(job: AnswerSheetJob) -> str:
    return reverse("list-sheet-job", kwargs={"list_id": job.case_list_id, "key": job.key})


def _own_job(request: HttpRequest, list_id: int, key: UUID) -> tuple[AnswerSheetJob | None, HttpResponse | None]:
    """The job of one of the organisation's lists, for those who may record its answers; 404 or 403 otherwise."""
    case_list = _own_list(request, list_id)
    if case_list is None:
        return None, not_found(request)
    job = (
        AnswerSheetJob.objects.filter(key=key, case_list=case_list)
        .defer("answers")
        .select_related("uploaded_by", "confirmed_by")
        .first()
    )
    if job is None:
        return None, not_found(request)
    if not permissions.can_record_answers(_user(request), case_list.organisation_id):
        return None, forbidden(request, _("Your role cannot record answers."))
    job.case_list = case_list
    return job, None


@never_cache
@case_reader_required
@require_GET
def list_sheet_job(request: HttpRequest, list_id: int, key: UUID) -> HttpResponseBase:
    """Where an uploaded sheet is: its progress, every problem found, what will be recorded, or what was."""
    job, refused = _own_job(request, list_id, key)
    if job is None:
        assert refused is not None
        return refused
    kinds = [(str(label), job.kind_counts.get(kind, 0)) for kind, label in AnswerKind.choices]
    context: dict[str, Any] = {
        "nav": "lists",
        "case_list": job.case_list,
        "job": job,
        "kinds": [(label, count) for label, count in kinds if count],
        "can_cancel": job.state in AnswerSheetJob.CANCELLABLE_STATES,
    }
    if job.problem_count:
        context["problems"] = jobs.problems_page(job, request)
    return render(request, "partners/lists/sheet_job.html", context)


@never_cache
@case_reader_required
@require_GET
def list_sheet_progress(request: HttpRequest, list_id: int, key: UUID) -> HttpResponseBase:
    """The progress bar's figures, for a page that polls."""
    job, _refused = _own_job(request, list_id, key)
    if job is None:
        return JsonResponse({"error": "not found"}, status=404)
    return jobs.progress_response(job)


@case_reader_required
@require_POST
def list_sheet_confirm(request: HttpRequest, list_id: int, key: UUID) -> HttpResponseBase:
    job, refused = _own_job(request, list_id, key)
    if job is None:
        assert refused is not None
        return refused
    try:
        if not sheet_jobs.confirm(job=job, user=_user(request)):
            messages.error(request, _("This sheet is not waiting for a confirmation: nothing more was recorded."))
    except sheet_jobs.QueueUnavailable as unavailable:
        messages.error(request, str(unavailable))
    return redirect(_job_url(job))


@case_reader_required
@require_POST
def list_sheet_cancel(request: HttpRequest, list_id: int, key: UUID) -> HttpResponseBase:
    job, refused = _own_job(request, list_id, key)
    if job is None:
        assert refused is not None
        return refused
    if sheet_jobs.cancel(job=job):
        messages.success(request, _("The sheet was cancelled and its answers deleted. Nothing was recorded."))
        return redirect(reverse("list-upload", kwargs={"list_id": job.case_list_id}))
    messages.error(request, _("This sheet can no longer be cancelled."))
    return redirect(_job_url(job))
