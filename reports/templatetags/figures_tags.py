"""Template filters of the figures page."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from reports.charts import fmt

register = template.Library()


@register.filter
def figure(value: Any) -> SafeString | str:
    """A count with thousands grouped, or a marked gap for a value the published figures hide."""
    if value is None:
        return format_html(
            '<span class="hidden-value" title="{}">—<span class="visually-hidden"> {}</span></span>',
            _("Hidden: a small number that could single out a child"),
            _("hidden"),
        )
    return fmt(value)


@register.filter
def month_name(value: str) -> str:
    """'2023-04' as the month's name and year in the current language."""
    from django.utils.dates import MONTHS

    year, month = value.split("-")
    return f"{MONTHS[int(month)]} {year}"


@register.filter
def protected(value: Any, k: int) -> SafeString | str:
    """A released count, or "fewer than k" for a cell a release does not show as a number."""
    if value is None:
        return format_html(
            '<span class="hidden-value" title="{}">&lt;&#8239;{}</span>',
            _("Fewer than %(k)s children: not shown as a number") % {"k": k},
            k,
        )
    return fmt(value)
