"""The web import pages: thin doors onto casework.web_import.

Who: ``accounts.permissions.can_import_cases`` (the organisation's supervisors); a caseworker is refused
(403), another organisation's import is absent (404), the references file is its importer's only. No
page shows a value of the files: headers, line numbers, columns and reasons only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.pages import forbidden, not_found
from accounts.requests import signed_in_user
from casework import jobs, web_import
from casework.import_models import ImportJob
from casework.importing.common import CASE_REQUIRED, EVENT_REQUIRED
from casework.importing.sources import SHEET_COLUMNS
from casework.views import View, case_reader_required

RECENT_IMPORTS = 10
_user = signed_in_user

# What each of the importer's columns holds, for the mapping page.
COLUMN_LABELS: dict[str, dict[str, Any]] = {
    "cases": {
        "source_ref": gettext_lazy("your own reference for the case"),
        "sex": gettext_lazy("sex (code)"),
        "birth_year": gettext_lazy("year of birth"),
        "oblast": gettext_lazy("oblast (code)"),
        "reported_on": gettext_lazy("date reported"),
        "displaced_on": gettext_lazy("date displaced"),
        "placement": gettext_lazy("placement (code)"),
        "institution": gettext_lazy("institution (code)"),
        "source": gettext_lazy("source of the report (code)"),
        "given_name": gettext_lazy("given name (identifying: encoded, never stored)"),
        "family_name": gettext_lazy("family name (identifying: encoded, never stored)"),
        "patronymic": gettext_lazy("patronymic (identifying: encoded, never stored)"),
        "birth_date": gettext_lazy("date of birth (identifying: encoded, never stored)"),
        "birth_place": gettext_lazy("place of birth (identifying: encoded, never stored)"),
    },
    "events": {
        "source_ref": gettext_lazy("your own reference for the case"),
        "status": gettext_lazy("new status (code)"),
        "occurred_on": gettext_lazy("date of the change"),
        "via": gettext_lazy("through the intermediary (its short name)"),
        "duplicate_of": gettext_lazy("duplicate of (your own reference of the surviving case)"),
        "note": gettext_lazy("note"),
    },
}
REQUIRED = {"cases": CASE_REQUIRED, "events": EVENT_REQUIRED}


def importer_required(view: View) -> View:
    """A reader of cases whose role may import them (accounts.permissions.can_import_cases)."""

    @case_reader_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not permissions.can_import_cases(_user(request)):
            return forbidden(request, _("Only a supervisor of the organisation may import cases."))
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _own_job(request: HttpRequest, key: UUID) -> ImportJob | None:
    user = _user(request)
    return ImportJob.objects.select_related("created_by").filter(key=key, organisation_id=user.organisation_id).first()


def _job_url(job: ImportJob) -> str:
    return reverse("import-job", kwargs={"key": job.key})


def _limits() -> dict[str, Any]:
    return {
        "max_mb": settings.IMPORT_MAX_UPLOAD_BYTES // (1024 * 1024),
        "upload_hours": settings.IMPORT_UPLOAD_HOURS,
        "references_hours": settings.IMPORT_REFERENCES_HOURS,
    }


@importer_required
@require_http_methods(["GET", "POST"])
def import_start(request: HttpRequest) -> HttpResponseBase:
    """Upload a file of cases (and one of status changes)."""
    user = _user(request)
    context: dict[str, Any] = {
        "nav": "cases",
        "recent": ImportJob.objects.filter(organisation_id=user.organisation_id)
        .select_related("created_by")
        .order_by("-created_at")[:RECENT_IMPORTS],
        "case_columns": SHEET_COLUMNS["cases"],
        "event_columns": SHEET_COLUMNS["events"],
        **_limits(),
    }
    if request.method == "GET":
        return render(request, "casework/import_start.html", context)
    try:
        job = web_import.start(
            user=user, cases=request.FILES.get("cases"), events=request.FILES.get("events"), request=request
        )
    except web_import.Refused as refused:
        context["problems"] = refused.messages
        return render(request, "casework/import_start.html", context, status=400)
    return redirect(reverse("import-columns", kwargs={"key": job.key}))


def _sheets(job: ImportJob, mapping: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    sheets = []
    for sheet, name, headers in (
        ("cases", job.cases_name, job.cases_headers),
        ("events", job.events_name, job.events_headers),
    ):
        if not name:
            continue
        choices = [
            (column, f"{column} — {COLUMN_LABELS[sheet][column]}{' *' if column in REQUIRED[sheet] else ''}")
            for column in SHEET_COLUMNS[sheet]
        ]
        sheets.append(
            {
                "sheet": sheet,
                "name": name,
                "choices": choices,
                "rows": [
                    {"field": f"{sheet}-{position}", "header": header, "column": mapping.get(sheet, {}).get(header, "")}
                    for position, header in enumerate(headers)
                ],
            }
        )
    return sheets


@importer_required
@require_http_methods(["GET", "POST"])
def import_columns(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """Match each header of the files to one of the importer's columns, or ignore it."""
    job = _own_job(request, key)
    if job is None:
        return not_found(request)
    if job.state not in {ImportJob.State.MAPPING, ImportJob.State.INVALID, ImportJob.State.READY}:
        return redirect(_job_url(job))
    mapping = web_import.suggested_mapping(job)
    context: dict[str, Any] = {"nav": "cases", "job": job}
    if request.method == "POST":
        mapping = {
            sheet: {
                header: request.POST.get(f"{sheet}-{position}", "").strip() for position, header in enumerate(headers)
            }
            for sheet, headers in (("cases", job.cases_headers), ("events", job.events_headers))
        }
        try:
            web_import.submit_mapping(job=job, mapping=mapping)
        except web_import.Refused as refused:
            unavailable = isinstance(refused, web_import.QueueUnavailable)
            context.update(problems=refused.messages, unavailable=unavailable, sheets=_sheets(job, mapping))
            return render(request, "casework/import_columns.html", context, status=503 if unavailable else 400)
        return redirect(_job_url(job))
    context["sheets"] = _sheets(job, mapping)
    return render(request, "casework/import_columns.html", context)


@never_cache
@importer_required
@require_GET
def import_job(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """Where an import is: its progress, every problem found, what will be imported, or what was."""
    job = _own_job(request, key)
    if job is None:
        return not_found(request)
    user = _user(request)
    context: dict[str, Any] = {
        "nav": "cases",
        "job": job,
        "working": job.working,
        "is_importer": job.created_by_id == user.pk,
        "can_change": job.state in {ImportJob.State.MAPPING, ImportJob.State.INVALID, ImportJob.State.READY},
        **_limits(),
    }
    if job.problem_count:
        context["problems"] = jobs.problems_page(job, request)
    return render(request, "casework/import_job.html", context)


@never_cache
@importer_required
@require_GET
def import_progress(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """The progress bar's figures, for a page that polls."""
    job = _own_job(request, key)
    if job is None:
        return JsonResponse({"error": "not found"}, status=404)
    return jobs.progress_response(job, cases=job.case_count, status_changes=job.event_count)


@importer_required
@require_POST
def import_confirm(request: HttpRequest, key: UUID) -> HttpResponseBase:
    job = _own_job(request, key)
    if job is None:
        return not_found(request)
    try:
        web_import.confirm(job=job, user=_user(request), request=request)
    except web_import.Refused as refused:
        for message in refused.messages:
            messages.error(request, message)
    return redirect(_job_url(job))


@importer_required
@require_POST
def import_cancel(request: HttpRequest, key: UUID) -> HttpResponseBase:
    job = _own_job(request, key)
    if job is None:
        return not_found(request)
    if web_import.cancel(job=job):
        messages.success(request, _("The import was cancelled and its files deleted. Nothing was written."))
    else:
        messages.error(request, _("This import can no longer be cancelled."))
    return redirect(reverse("import-start"))


@importer_required
@require_GET
def import_problems(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """Every problem found, as a text file (one a line: file:line: column: reason)."""
    job = _own_job(request, key)
    if job is None or not job.problem_count:
        return not_found(request)
    response = HttpResponse(job.problems + "\n", content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-problems-{job.created_at:%Y%m%d-%H%M}.txt"'
    response["Cache-Control"] = "no-store"
    return response


@importer_required
@require_GET
def import_references(request: HttpRequest, key: UUID) -> HttpResponseBase:
    """source_ref,reference of every imported case: the importer's, for a limited time; each download logged."""
    job = _own_job(request, key)
    if job is None:
        return not_found(request)
    found = web_import.references(job=job, user=_user(request), request=request)
    if found is None:
        return not_found(request)
    response = FileResponse(found.path.open("rb"), as_attachment=True, filename=found.filename)
    response["Content-Type"] = "text/csv; charset=utf-8"
    response["Cache-Control"] = "no-store"
    return response
