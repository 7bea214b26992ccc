"""Template helpers for the caseworker pages: age bands, numbers, sortable headers."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any
from urllib.parse import quote

from django import forms, template
from django.core.exceptions import FieldDoesNotExist
from django.forms import BoundField
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat
from django.utils.formats import get_format, number_format
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.timezone import localtime
from django.utils.translation import get_language, gettext
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


# --- form fields written without the widget templates (issue 16) ----------------------------------------
#
# Django renders each widget and each <option> through a template of its own: 39 ms of the case list's
# 202 ms went to its filter form, and the case page's status and follow-up forms cost as much. Plain
# selects, text, date and hidden inputs, text areas and check boxes are written here, with the same
# elements and attributes as the widgets and casework/_field.html give (tests/test_case_list_rendering.py
# compares them). Anything else (an error to show, radio buttons, another widget) goes to
# casework/_field.html as before.

_FAST_WIDGETS = (
    forms.Select,
    forms.TextInput,
    forms.DateInput,
    forms.NumberInput,
    forms.HiddenInput,
    forms.Textarea,
    forms.CheckboxInput,
)


def _attributes(attrs: dict[str, Any]) -> str:
    written = []
    for name, value in attrs.items():
        if value is True:
            written.append(f" {name}")
        elif value is not False:
            written.append(f' {name}="{conditional_escape(value)}"')
    return "".join(written)


def _choices(field: forms.Field) -> Any:
    """A select's choices; a model's read in one query (its iterator would open a server-side cursor: three)."""
    if isinstance(field, forms.ModelChoiceField):
        empty = [("", field.empty_label)] if field.empty_label is not None else []
        items = field.queryset if field.queryset is not None else ()
        return [*empty, *((field.prepare_value(item), field.label_from_instance(item)) for item in items)]
    return field.choices  # type: ignore[attr-defined]


def _control(field: BoundField, widget: Any, attrs: str, name: str, auto_id: str) -> str | None:
    if isinstance(widget, forms.Select):
        value = field.value()
        chosen = "" if value is None else str(value)
        options = []
        for option_value, option_label in _choices(field.field):
            if isinstance(option_label, (list, tuple)):
                return None  # option groups: the widget's own template
            key = "" if option_value is None else str(option_value)
            selected = " selected" if key == chosen else ""
            label = conditional_escape(option_label)
            options.append(f'<option value="{conditional_escape(key)}"{selected}>{label}</option>')
        return f'<select name="{name}"{attrs} id="{auto_id}">\n' + "\n".join(options) + "\n</select>"
    value = widget.format_value(field.value())
    if isinstance(widget, forms.Textarea):
        text = conditional_escape(value) if value else ""
        return f'<textarea name="{name}"{attrs} id="{auto_id}">\n{text}</textarea>'
    shown = "" if value is None else f' value="{conditional_escape(value)}"'
    return f'<input type="{conditional_escape(widget.input_type)}" name="{name}"{shown}{attrs} id="{auto_id}">'


def _fast_field(field: BoundField) -> str | None:
    widget = field.field.widget
    if type(widget) not in _FAST_WIDGETS or field.errors or not field.auto_id or "id" in widget.attrs:
        return None
    auto_id = conditional_escape(field.auto_id)
    name = conditional_escape(field.html_name)
    attrs = _attributes(field.build_widget_attrs(dict(widget.attrs), widget))
    if isinstance(widget, forms.CheckboxInput):
        if field.help_text:
            return None
        checked = " checked" if widget.check_test(field.value()) else ""
        return (
            f'<div class="field checkbox">\n  <input type="checkbox" name="{name}"{attrs} id="{auto_id}"{checked}>\n'
            f'  <label for="{auto_id}">{conditional_escape(field.label)}</label>\n</div>'
        )
    control = _control(field, widget, attrs, name, auto_id)
    if control is None or widget.is_hidden:
        return control
    required = (
        f' <span class="required">{conditional_escape(gettext("(required)"))}</span>' if field.field.required else ""
    )
    help_text = (
        f'\n  <span class="help" id="{auto_id}_helptext">{conditional_escape(field.help_text)}</span>'
        if field.help_text
        else ""
    )
    return (
        f'<div class="field" id="{auto_id}_field">\n'
        f'  <label for="{auto_id}">{conditional_escape(field.label)}{required}</label>{help_text}\n'
        f"  {control}\n</div>"
    )


@register.simple_tag
def form_field(field: BoundField) -> str:
    """A form field, as casework/_field.html would render it, without the widget templates."""
    fast = _fast_field(field)
    if fast is None:
        return render_to_string("casework/_field.html", {"field": field})
    return mark_safe(fast)  # noqa: S308 (every value above is escaped)


# The case list's filters (the name its template has used).
filter_field = register.simple_tag(form_field, name="filter_field")


# --- the rows of a case table, written in one pass (issue 16) ------------------------------------------
#
# Fifty rows of seven cells through the template language cost more than the rest of the case list
# together (a variable, a filter and a tag at a time). The same rows, written here: the labels translated
# once per table, a status's and an oblast's name once per language, the case's address from one reverse.


_LABELS: dict[tuple[str, str], dict[str, str]] = {}


def _escaped_labels(choices: type[Status] | type[Oblast]) -> dict[str, str]:
    """The choices' names, escaped, once per language (the register's own choices never change at run time)."""
    key = (choices.__name__, get_language() or "")
    labels = _LABELS.get(key)
    if labels is None:
        labels = _LABELS[key] = {value: conditional_escape(str(label)) for value, label in choices.choices}
    return labels


# Each day in each language's DATE_FORMAT, formatted once for every page (a few years of days, bounded).
_DAYS: dict[tuple[str, dt.date], str] = {}
_DAYS_KEPT = 20_000


def _dates() -> Any:
    """A date in the reader's language's DATE_FORMAT (escaped), each day formatted once."""
    language = get_language() or ""
    pattern = get_format("DATE_FORMAT")

    def format_date(value: Any) -> str:
        key = (language, value.date() if isinstance(value, dt.datetime) else value)
        shown = _DAYS.get(key)
        if shown is None:
            if len(_DAYS) >= _DAYS_KEPT:
                _DAYS.clear()
            shown = _DAYS[key] = escape(dateformat.format(key[1], pattern))
        return shown

    return format_date


@register.simple_tag
def case_rows(cases: Any, selectable: bool = False) -> str:
    """The ``<tr>`` of each case, as casework/_case_table.html shows them."""
    labels = {
        key: conditional_escape(gettext(text))
        for key, text in (
            ("reference", "Reference"),
            ("status", "Status"),
            ("oblast", "Oblast"),
            ("age", "Age band"),
            ("reported", "Reported"),
            ("changed", "Last status change"),
            ("assigned", "Assigned to"),
            ("none_yet", "none yet"),
            ("nobody", "nobody"),
        )
    }
    statuses, oblasts = _escaped_labels(Status), _escaped_labels(Oblast)
    unknown_band = conditional_escape(str(_("unknown")))
    _date = _dates()
    placeholder = "REFERENCE"
    address = reverse("case-detail", args=[placeholder])
    rows = []
    for case in cases:
        reference = escape(case.reference)
        cells = ["    <tr>\n      "]
        if selectable:
            select = conditional_escape(gettext("Select %(reference)s") % {"reference": case.reference})
            cells.append(
                f'<td class="select"><input type="checkbox" name="case" value="{reference}" '
                f'id="select-{reference}" aria-label="{select}"></td>'
            )
        href = escape(address.replace(placeholder, quote(case.reference, safe="")))
        band = age_band_of(case)
        changed = case.last_change_at
        if changed:
            local = localtime(changed)
            changed_cell = f'<time datetime="{local.isoformat()}">{_date(local)}</time>'
        else:
            changed_cell = f'<span class="muted">{labels["none_yet"]}</span>'
        assigned = case.assigned_to
        assigned_cell = escape(assigned.username) if assigned else f'<span class="muted">{labels["nobody"]}</span>'
        status = case.status
        cells.append(
            f'\n      <th scope="row" data-label="{labels["reference"]}">'
            f'<a class="ref" href="{href}">{reference}</a></th>'
            f'\n      <td data-label="{labels["status"]}"><span class="badge status-{escape(status)}">'
            f"{statuses.get(status) or escape(status)}</span></td>"
            f'\n      <td data-label="{labels["oblast"]}">'
            f"{oblasts.get(case.oblast) or escape(case.oblast)}</td>"
            f'\n      <td data-label="{labels["age"]}">'
            f"{unknown_band if band == UNKNOWN_AGE_BAND else escape(band.replace('-', '–'))}</td>"
            f'\n      <td data-label="{labels["reported"]}">'
            f'<time datetime="{case.reported_on.isoformat()}">'
            f"{_date(case.reported_on)}</time></td>"
            f'\n      <td data-label="{labels["changed"]}">{changed_cell}</td>'
            f'\n      <td data-label="{labels["assigned"]}">{assigned_cell}</td>'
            "\n    </tr>"
        )
        rows.append("".join(cells))
    return mark_safe("\n".join(rows))  # noqa: S308 (every value above is escaped)
