"""The case list's filter form, written without the widget templates (issue 16), is the form the widgets write."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from casework import selectors
from casework.forms import CaseFilter
from casework.templatetags.casework_tags import filter_field
from tests.factories import InstitutionFactory


def normal(html: str) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", str(html))).strip()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "status=located&oblast=UA-14&sort=-changed",
        "q=C-AB&placement=camp&institution=crimea-01&risk=medical&mine=on&idle=on&sort=reference",
        "q=%3Cscript%3E&mine=false",
        "status=nope&oblast=XX&institution=missing",
    ],
)
def test_the_filters_read_as_the_widgets_write_them(caseworker, query):
    InstitutionFactory(code="crimea-01", name="A <home> & school")
    request = RequestFactory().get(f"/cases/?{query}")
    request.user = caseworker
    filters = CaseFilter(request.GET, queryset=selectors.case_rows(caseworker), request=request)
    filters.is_valid()
    for name in ("q", "status", "oblast", "placement", "institution", "risk", "sort", "mine", "idle"):
        field = filters.form[name]
        assert normal(filter_field(field)) == normal(render_to_string("casework/_field.html", {"field": field})), name
