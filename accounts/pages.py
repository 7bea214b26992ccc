"""Pages every app's views share: refusals, not-found, and the confirmation step before an irreversible action."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def forbidden(request: HttpRequest, message: str | None = None) -> HttpResponse:
    return render(request, "forbidden.html", {"message": message}, status=403)


def not_found(request: HttpRequest) -> HttpResponse:
    # The same page for an unknown reference and for another organisation's case.
    return render(request, "not_found.html", status=404)


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
