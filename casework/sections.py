"""Sections that other apps add to casework's pages, without casework importing them.

The arrows between apps point one way (accounts <- casework <- partners):
casework cannot ask partners for a case's shares. Instead partners adds its
sections when it starts (``partners.apps.PartnersConfig.ready``): on the case
page, the sharing section; on the case list, the form that acts on the cases
ticked or matched. A section is a template and a function that gives its
context, or None when the reader may not see it.

A case list section is a fieldset inside the list's form, around the ticked
cases: its buttons send the form to its own view (``formaction``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from casework.models import Case

CaseContext = Callable[[HttpRequest, Case], "dict[str, Any] | None"]
ListContext = Callable[[HttpRequest, "CaseListState"], "dict[str, Any] | None"]


@dataclass(frozen=True)
class CaseListState:
    """What a case list section needs to know about the list: its filter and how many cases it matches
    (``count_is_exact`` False: more than ``count``, the list counts no further; casework.paging)."""

    filter_query: str
    count: int
    count_is_exact: bool = True


@dataclass(frozen=True)
class Section:
    name: str
    template: str
    context: Callable[..., dict[str, Any] | None]


@dataclass
class Shown:
    """A section as one page shows it: its template and its context."""

    name: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)


_CASE_PAGE: dict[str, Section] = {}
_CASE_LIST: dict[str, Section] = {}


def add_to_case_page(*, name: str, template: str, context: CaseContext) -> None:
    _CASE_PAGE[name] = Section(name, template, context)


def add_to_case_list(*, name: str, template: str, context: ListContext) -> None:
    _CASE_LIST[name] = Section(name, template, context)


def case_page_sections(
    request: HttpRequest, case: Case, *, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Shown]:
    """The sections of a case page for this reader. ``overrides`` replace parts of a section's context
    (a form sent back with its errors)."""
    shown = []
    for section in _CASE_PAGE.values():
        context = section.context(request, case)
        if context is not None:
            shown.append(Shown(section.name, section.template, {**context, **(overrides or {}).get(section.name, {})}))
    return shown


def case_list_sections(request: HttpRequest, state: CaseListState) -> list[Shown]:
    shown = []
    for section in _CASE_LIST.values():
        context = section.context(request, state)
        if context is not None:
            shown.append(Shown(section.name, section.template, context))
    return shown


# "My work" on the home page: another app adds what it knows about the reader's cases (partners: shares
# that end soon). The context function also gives the cases it names, for the access log.
WorkContext = Callable[[HttpRequest], "dict[str, Any] | None"]
_MY_WORK: dict[str, Section] = {}


def add_to_my_work(*, name: str, template: str, context: WorkContext) -> None:
    _MY_WORK[name] = Section(name, template, context)


def my_work_sections(request: HttpRequest) -> list[Shown]:
    shown = []
    for section in _MY_WORK.values():
        context = section.context(request)
        if context is not None:
            shown.append(Shown(section.name, section.template, context))
    return shown
