"""The figures page, its exports, and snapshot requests: thin doors onto selectors and services.

Every view needs a signed-in user. Snapshots are exact and internal: what a
user sees of them is decided in ``reports.selectors`` (the register's or
their organisation's exact figures, by role and host); asking for a new
snapshot needs a supervisor or an analyst. Nothing here publishes: releases
do (``reports.release_views``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.requests import signed_in_user
from casework.models import Sex
from config import broker
from reports import exports, selectors, services
from reports.charts import fmt, oblast_name, page_charts
from reports.figures import UNATTRIBUTED
from reports.models import Snapshot

EXPORT_FORMATS = {
    "json": ("application/json; charset=utf-8", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "hxl": ("text/csv; charset=utf-8", "hxl.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


class SnapshotRequestForm(forms.Form):
    as_of = forms.DateField(
        label=gettext_lazy("Figures as of"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy("Status changes dated after this day are left out."),
    )


_user = signed_in_user


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Http404 from None


@login_required
@require_GET
def figures_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    snapshot = selectors.snapshot_to_show(_int_param(request, "snapshot"))
    if snapshot is None and request.GET.get("snapshot"):
        raise Http404
    can_request = services.can_request_snapshots(user)
    recent = selectors.recent_snapshots()
    context: dict[str, Any] = {
        "nav": "figures",
        "snapshot": snapshot,
        "scope": selectors.exact_scope(user).value,
        "can_request": can_request,
        "recent": recent,
        "open_snapshots": [(s, status_text(s)) for s in recent if s.is_open],
        "follow": _int_param(request, "requested"),
        "form": SnapshotRequestForm(initial={"as_of": timezone.localdate()}),
        "queue_available": broker.queue_available() if can_request else True,
    }
    shown = selectors.figures_for(user, snapshot) if snapshot is not None else None
    if snapshot is not None and shown is not None:
        figures = shown.figures
        names = selectors.intermediary_names([*figures["by_via"], *figures.get("lists", {})])
        context.update(
            figures=figures,
            shown_scope=shown.scope.value,
            charts=page_charts(figures, intermediaries=names),
            tables=figure_tables(figures, names),
            snapshot_query=f"snapshot={snapshot.pk}",
        )
    else:
        context["snapshot"] = None
    return render(request, "reports/figures.html", context)


def figure_tables(figures: dict[str, Any], names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    sex_labels = dict(Sex.choices)
    return {
        "oblast": [
            {"key": code, "label": oblast_name(code), **cell}
            for code, cell in sorted(
                figures["by_oblast"].items(),
                key=lambda item: (item[1]["reported"] is None, -(item[1]["reported"] or 0)),
            )
        ],
        "sex": [{"key": key, "label": sex_labels.get(key, key), **cell} for key, cell in figures["by_sex"].items()],
        "age_band": [
            {"key": key, "label": _("Unknown") if key == "unknown" else key, **cell}
            for key, cell in figures["by_age_band"].items()
        ],
        "via": [
            {
                "key": slug,
                "label": _("No intermediary") if slug == UNATTRIBUTED else names.get(slug, slug),
                "repatriated": value,
            }
            for slug, value in figures["by_via"].items()
        ],
        "monthly": list(reversed(figures["monthly"])),
        # A snapshot's exact figures (internal), or a release's protected cells (reports.protection).
        "lists": [
            {"key": slug, "label": names.get(slug, slug), **cell} for slug, cell in figures.get("lists", {}).items()
        ],
    }


@login_required
@require_POST
def request_snapshot(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not services.can_request_snapshots(user):
        return render(
            request,
            "reports/forbidden.html",
            {"message": _("Only supervisors and analysts may request new figures.")},
            status=403,
        )
    form = SnapshotRequestForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("figures")
    try:
        snapshot = services.request_snapshot(user=user, as_of=form.cleaned_data["as_of"])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("figures")
    snapshot.refresh_from_db()
    as_of = formats.date_format(snapshot.as_of, "DATE_FORMAT")
    if snapshot.state == Snapshot.State.FAILED:
        messages.error(
            request,
            _("The figures as of %(date)s could not be computed: %(error)s")
            % {
                "date": as_of,
                "error": snapshot.error,
            },
        )
    elif snapshot.state == Snapshot.State.DONE:
        messages.success(request, _("The figures as of %(date)s are ready.") % {"date": as_of})
        return redirect(f"{reverse('figures')}?snapshot={snapshot.pk}")
    else:
        messages.success(
            request,
            _("The figures as of %(date)s are being computed; this page follows their progress.") % {"date": as_of},
        )
    return redirect(f"{reverse('figures')}?requested={snapshot.pk}")


@never_cache
@login_required
@require_GET
def snapshot_status(request: HttpRequest, snapshot_id: int) -> JsonResponse:
    snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
    if snapshot is None:
        raise Http404
    return JsonResponse(
        {
            "id": snapshot.pk,
            "state": snapshot.state,
            "label": status_text(snapshot),
            "as_of": snapshot.as_of.isoformat(),
            "done": snapshot.state == Snapshot.State.DONE,
            "finished": not snapshot.is_open,
            "restarted_at": snapshot.restarted_at.isoformat() if snapshot.restarted_at else None,
            "url": f"{reverse('figures')}?snapshot={snapshot.pk}",
        }
    )


def status_text(snapshot: Snapshot) -> str:
    """Where a snapshot is, in a sentence or two, for the page and its live region."""
    as_of = formats.date_format(snapshot.as_of, "DATE_FORMAT")
    if snapshot.state == Snapshot.State.DONE:
        return _("Figures as of %(date)s: done in %(seconds)s s.") % {
            "date": as_of,
            "seconds": fmt((snapshot.duration_ms or 0) / 1000),
        }
    if snapshot.state == Snapshot.State.FAILED:
        return _("Figures as of %(date)s: failed. %(error)s") % {"date": as_of, "error": snapshot.error}
    if snapshot.state == Snapshot.State.QUEUED:
        sentences = [_("Figures as of %(date)s: queued, waiting for a worker.") % {"date": as_of}]
    else:
        sentences = [_("Figures as of %(date)s: being computed.") % {"date": as_of}]
    if snapshot.restarted_at is not None:
        sentences.append(restarted_text(snapshot.restarted_at))
    silent = services.silent_since(snapshot)
    if silent is not None:
        sentences.append(
            _("No sign of its worker since %(time)s: the computation will be restarted shortly.")
            % {"time": _time(silent)}
        )
    return " ".join(sentences)


def restarted_text(restarted_at: dt.datetime) -> str:
    return _("The computation stopped (its worker was lost) and was restarted at %(time)s.") % {
        "time": _time(restarted_at)
    }


def _time(moment: dt.datetime) -> str:
    return formats.time_format(timezone.localtime(moment), "TIME_FORMAT")


@login_required
@require_GET
def export(request: HttpRequest, fmt_name: str) -> HttpResponse:
    if fmt_name not in EXPORT_FORMATS:
        raise Http404
    user = _user(request)
    snapshot = selectors.snapshot_to_show(_int_param(request, "snapshot"))
    if snapshot is None:
        raise Http404
    shown = selectors.figures_for(user, snapshot)
    if shown is None:
        raise Http404
    variant = "exact-own-organisation" if shown.scope.value == "organisation" else "exact"
    content_type, extension = EXPORT_FORMATS[fmt_name]
    filename = f"figures-{snapshot.as_of.isoformat()}-{variant}.{extension}"
    body: str | bytes
    if fmt_name == "json":
        body = exports.to_json(shown.figures)
    elif fmt_name == "xlsx":
        body = exports.to_xlsx(shown.figures, about=_about(snapshot, shown, user))
    else:
        body = exports.to_csv(shown.figures, hxl=fmt_name == "hxl")
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _about(snapshot: Snapshot, shown: selectors.Shown, user: User) -> list[tuple[str, str]]:
    if shown.scope.value == "organisation":
        variant = _("Exact, for staff only: the cases of %(organisation)s.") % {
            "organisation": user.organisation.display_name
        }
    else:
        variant = _("Exact, for staff only: all organisations' cases.")
    finished = snapshot.finished_at or timezone.now()
    return [
        (_("Figures as of"), snapshot.as_of.isoformat()),
        (_("Variant"), variant),
        (_("Computed at"), timezone.localtime(finished).strftime("%Y-%m-%d %H:%M %Z")),
        (
            _("Computed from"),
            _("%(cases)s cases and %(changes)s status changes")
            % {
                "cases": snapshot.source_cases,
                "changes": snapshot.source_status_changes,
            },
        ),
        (_("Snapshot"), str(snapshot.pk)),
        (_("Definitions"), _("DESIGN.md section 4: reported, repatriated, outstanding, return events, age bands.")),
        (_("Monthly rows"), _("Cumulative values at the end of each month; the last month as of the date above.")),
    ]
