"""The releases pages for signed-in users: the list, preparing, approving (with a confirmation step),
discarding a draft, a release's page and its files. Thin doors onto ``reports.selectors`` and
``reports.releases``.

Every signed-in user sees the approved releases; a draft is seen only by those who may prepare or
approve releases (the host organisation's supervisors and analysts, superusers): for anyone else it
does not exist (404). The public page and the API are elsewhere and show approved releases only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import pages, permissions
from accounts.requests import signed_in_user
from reports import exports, protection, releases, selectors
from reports.charts import page_charts
from reports.models import Release
from reports.services import NotPermitted
from reports.views import EXPORT_FORMATS, figure_tables


class ReleasePrepareForm(forms.Form):
    as_of = forms.DateField(
        label=gettext_lazy("Release as of"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy("The figures as of the end of this day. Status changes dated later are left out."),
    )
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=releases.NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Kept with the release and shown with it. No personal data."),
    )


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "reports/forbidden.html", {"message": message}, status=403)


def _release_or_404(request: HttpRequest, number: int) -> Release:
    release = selectors.release_for(signed_in_user(request), number)
    if release is None:
        raise Http404
    return release


@login_required
@require_GET
def release_list(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    can_prepare = permissions.can_prepare_release(user)
    rho = releases.release_rho()
    context: dict[str, Any] = {
        "nav": "figures",
        "releases": list(selectors.releases_for(user)),
        "can_prepare": can_prepare,
        "form": ReleasePrepareForm(initial={"as_of": timezone.localdate()}),
        "rho": rho,
        "sigma": protection.headline_sigma(rho),
        "rho_per_year": settings.FIGURES_PRIVACY_RHO_PER_YEAR,
        "min_days": settings.FIGURES_RELEASE_MIN_DAYS,
        "next_date": selectors.next_release_date(rho=rho) if can_prepare else None,
    }
    return render(request, "reports/releases.html", context)


@login_required
@require_POST
def release_prepare(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if not permissions.can_prepare_release(user):
        return _forbidden(request, _("Only the host organisation's supervisors and analysts may prepare releases."))
    form = ReleasePrepareForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("releases")
    try:
        release = releases.prepare_release(user=user, as_of=form.cleaned_data["as_of"], note=form.cleaned_data["note"])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("releases")
    messages.success(
        request,
        _("Release %(number)s is prepared: check it, then a supervisor approves it.") % {"number": release.number},
    )
    return redirect("release-detail", number=release.number)


@login_required
@require_GET
def release_detail(request: HttpRequest, number: int) -> HttpResponse:
    user = signed_in_user(request)
    release = _release_or_404(request, number)
    figures = release.figures
    names = selectors.intermediary_names(figures["by_via"])
    charted = dict(figures, by_oblast={k: v for k, v in figures["by_oblast"].items() if v["reported"] is not None})
    approvals = list(release.approvals.all())
    context = {
        "nav": "figures",
        "release": release,
        "figures": figures,
        "k": release.min_cell,
        "charts": page_charts(charted, intermediaries=names),
        "tables": figure_tables(figures, names),
        "approvals": approvals,
        "approvals_required": settings.FIGURES_RELEASE_APPROVERS,
        "can_approve": releases.approval_refusal(user, release, approvals=approvals) is None,
        "can_discard": not release.is_approved and permissions.can_see_release_drafts(user),
        "export_formats": list(EXPORT_FORMATS),
    }
    return render(request, "reports/release_detail.html", context)


@login_required
@require_http_methods(["POST"])
def release_approve(request: HttpRequest, number: int) -> HttpResponse:
    user = signed_in_user(request)
    release = _release_or_404(request, number)
    if not permissions.can_approve_release(user):
        return _forbidden(request, _("Only the host organisation's supervisors may approve releases."))
    detail = reverse("release-detail", args=[release.number])
    if release.is_approved:
        messages.error(request, _("Release %(number)s is approved already.") % {"number": release.number})
        return redirect(detail)
    if not pages.confirmed(request):
        return pages.confirm_page(
            request,
            title=_("Approve release %(number)s") % {"number": release.number},
            question=_(
                "Approve the release of the figures as of %(date)s? Once approved by enough supervisors it is "
                "published: anyone may read and download it, and it can never be changed or withdrawn."
            )
            % {"date": release.as_of.isoformat()},
            consequence=_("It spends ρ = %(rho)s of each child's privacy-loss budget for the year.")
            % {"rho": f"{release.rho:.3f}"},
            confirm_label=_("Approve"),
            cancel_url=detail,
            nav="figures",
        )
    try:
        approved = releases.approve_release(user=user, release=release)
    except (ValidationError, NotPermitted) as exc:
        for message in getattr(exc, "messages", [str(exc)]):
            messages.error(request, message)
        return redirect(detail)
    if approved.is_approved:
        messages.success(request, _("Release %(number)s is approved and published.") % {"number": approved.number})
    else:
        messages.success(request, _("Your approval is recorded; the release needs another supervisor's approval."))
    return redirect(detail)


@login_required
@require_http_methods(["POST"])
def release_discard(request: HttpRequest, number: int) -> HttpResponse:
    user = signed_in_user(request)
    release = _release_or_404(request, number)
    if not permissions.can_see_release_drafts(user):
        return _forbidden(request, _("Only those who prepare or approve releases may discard a draft."))
    if release.is_approved:
        messages.error(
            request, _("Release %(number)s is approved: it cannot be discarded.") % {"number": release.number}
        )
        return redirect("release-detail", number=release.number)
    if not pages.confirmed(request):
        return pages.confirm_page(
            request,
            title=_("Discard draft release %(number)s") % {"number": release.number},
            question=_("Discard this draft? Its figures are dropped; the snapshot they came from stays."),
            confirm_label=_("Discard the draft"),
            cancel_url=reverse("release-detail", args=[release.number]),
            nav="figures",
        )
    try:
        releases.discard_release(user=user, release=release)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("release-detail", number=release.number)
    messages.success(request, _("The draft is discarded."))
    return redirect("releases")


@login_required
@require_GET
def release_export(request: HttpRequest, number: int, fmt_name: str) -> HttpResponse:
    if fmt_name not in EXPORT_FORMATS:
        raise Http404
    release = _release_or_404(request, number)
    content_type, extension = EXPORT_FORMATS[fmt_name]
    body: str | bytes
    if fmt_name == "json":
        body = exports.release_json(release)
    elif fmt_name == "xlsx":
        body = exports.release_xlsx(release)
    else:
        body = exports.release_csv(release, hxl=fmt_name == "hxl")
    state = "" if release.is_approved else "-draft"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="release-{release.number}-{release.as_of.isoformat()}{state}.{extension}"'
    )
    response["Cache-Control"] = "private, no-store"
    return response
