"""Template helpers for the caseworker pages: age bands, numbers, sortable headers."""

from __future__ import annotations

from typing import Any

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.http import QueryDict
from django.utils.formats import number_format
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from casework.display import datetime_with_seconds
from casework.models import UNKNOWN_AGE_BAND, Case, Oblast, Status

register = template.Library()


def age_band_of(case: Case) -> str:
    """The age band key of a case at its report (``unknown`` without a birth year)."""
    return case.age_band


@register.filter
def age_band(case: Case) -> str:
    key = age_band_of(case)
    return str(_("unknown")) if key == UNKNOWN_AGE_BAND else key.replace("-", "–")


@register.filter
def number(value: Any) -> str:
    """An integer with the chosen language's digit grouping (20,000 or 20 000)."""
    if value is None or value == "":
        return ""
    return number_format(value, decimal_pos=0, force_grouping=True)


@register.inclusion_tag("casework/_sort_header.html", takes_context=True)
def sort_header(context: template.Context, key: str, label: str, current: str) -> dict[str, Any]:
    """A column header that sorts by ``key``; a second click reverses the order."""
    ascending = current == key
    descending = current == f"-{key}"
    target = f"-{key}" if ascending else key
    query: QueryDict = context["request"].GET.copy()
    query["sort"] = target
    query.pop("page", None)
    return {
        "label": label,
        "query": query.urlencode(),
        "aria_sort": "ascending" if ascending else "descending" if descending else "none",
        "ascending": ascending,
        "descending": descending,
    }


def _verbose_name(name: str) -> str:
    try:
        field = Case._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    return str(capfirst(getattr(field, "verbose_name", name)))


@register.filter
def risk_labels(case: Case) -> list[str]:
    return [_verbose_name(f"risk_{flag}") for flag in case.risk_flags]


@register.filter
def field_labels(names: list[str]) -> str:
    """Field names of a record edit, as the reader's language names them."""
    return ", ".join(_verbose_name(name) for name in names)


@register.filter
def region_name(code: str) -> str:
    """An oblast's name for an ISO 3166-2:UA code; other text as it is."""
    return str(Oblast(code).label) if code in Oblast.values else code


@register.filter
def status_label(status: str) -> str:
    """A status's name in the reader's language (cheaper than ``get_status_display`` in long tables)."""
    return str(Status(status).label) if status in Status.values else status


@register.filter
def with_seconds(value: Any) -> str:
    """An audit time to the second, in the language's date and time format."""
    return datetime_with_seconds(value) if value else ""
