"""The public figures: the latest release and every earlier one, for anyone, without signing in.

Only approved releases leave the register (DESIGN.md section 10): these views
read nothing else. A page depends only on its address and the reader's
``Accept-Language`` (or ``?lang=``): no session, cookie or CSRF token is read
or set, so a shared cache or a CDN may keep it (``Cache-Control: public``,
``Vary: Accept-Language``). Printable (the stylesheet's print rules), and
under the strict content security policy of every page: no script at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import trans_real
from django.views.decorators.http import require_safe

from reports import exports, selectors
from reports.charts import page_charts
from reports.models import Release
from reports.views import figure_tables

LANGUAGE_CODES = tuple(code for code, _name in settings.LANGUAGES)


def reader_language(request: HttpRequest) -> str:
    """``?lang=`` when it names a language of the register, else the browser's best match: never a cookie."""
    asked = request.GET.get("lang", "")
    if asked in LANGUAGE_CODES:
        return asked
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    for code, _quality in trans_real.parse_accept_lang_header(header[:255]):
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


def public_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The whole view in the reader's language (charts and tables are built in it too), cacheable by anyone."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        language = reader_language(request)
        with translation.override(language):
            response = view(request, *args, **kwargs)
        response["Content-Language"] = language
        max_age = settings.PUBLIC_FIGURES_CACHE_SECONDS if response.status_code == 200 else 60
        patch_cache_control(response, public=True, max_age=max_age)
        patch_vary_headers(response, ("Accept-Language",))
        return response

    return wrapper


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, template, {**context, "reader_language": translation.get_language()}, status=status)


def _context(release: Release) -> dict[str, Any]:
    figures = release.figures
    names = selectors.intermediary_names(figures["by_via"])
    return {
        "release": release,
        "figures": figures,
        "method": figures.get("method", {}),
        "charts": page_charts(figures, intermediaries=names),
        "tables": figure_tables(figures, names),
        "releases": selectors.release_list(),
    }


@require_safe
@public_page
def latest(request: HttpRequest) -> HttpResponse:
    release = selectors.latest_release()
    if release is None:
        return _page(request, "reports/public/figures.html", {"release": None, "releases": ()})
    return _page(request, "reports/public/figures.html", {**_context(release), "is_latest": True})


@require_safe
@public_page
def by_number(request: HttpRequest, number: int) -> HttpResponse:
    release = selectors.release_by_number(number)
    if release is None:
        return _page(request, "reports/public/not_found.html", {"number": number}, status=404)
    latest_release = selectors.latest_release()
    is_latest = latest_release is not None and latest_release.pk == release.pk
    return _page(request, "reports/public/figures.html", {**_context(release), "is_latest": is_latest})


FILE_TYPES = {
    "json": ("application/json; charset=utf-8", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "hxl": ("text/csv; charset=utf-8", "hxl.csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


@require_safe
@public_page
def release_file(request: HttpRequest, number: int, fmt_name: str) -> HttpResponse:
    """A release as a file: the same for everyone, kept by caches like the page."""
    if fmt_name not in FILE_TYPES:
        raise Http404
    release = selectors.release_by_number(number)
    if release is None:
        raise Http404
    content_type, extension = FILE_TYPES[fmt_name]
    body: str | bytes
    if fmt_name == "json":
        body = exports.release_json(release)
    elif fmt_name == "xlsx":
        body = exports.release_xlsx(release)
    else:
        body = exports.release_csv(release, hxl=fmt_name == "hxl")
    response = HttpResponse(body, content_type=content_type)
    filename = f"release-{release.number}-{release.as_of.isoformat()}.{extension}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
