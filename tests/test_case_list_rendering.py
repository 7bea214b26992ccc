"""The case list's filter form, written without the widget templates (issue 16), is the form the widgets write."""

from __future__ import annotations

import re
from pathlib import Path

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


# The rows as the template language wrote them before casework_tags.case_rows (issue 16).
TEMPLATE_ROWS = (Path(__file__).parent / "case_rows_before.html").read_text()


@pytest.mark.parametrize("language", ["en", "uk"])
@pytest.mark.parametrize("selectable", [False, True])
def test_the_rows_read_as_the_template_wrote_them(ngo_a, caseworker, language, selectable):
    import datetime as dt

    from django.template import Context, Template
    from django.utils import timezone, translation

    from casework.models import Case
    from casework.templatetags.casework_tags import case_rows
    from tests.factories import CaseFactory

    CaseFactory(organisation=ngo_a, assigned_to=caseworker, birth_year=2012, oblast="UA-14", status="located")
    CaseFactory(organisation=ngo_a, birth_year=None, oblast="UA-30", status="reported")
    Case.objects.filter(status="located").update(last_change_at=timezone.make_aware(dt.datetime(2024, 12, 31, 23, 30)))
    cases = list(selectors.case_rows(caseworker).order_by("id"))
    with translation.override(language):
        written = case_rows(cases, selectable)
        expected = Template(TEMPLATE_ROWS).render(Context({"cases": cases, "selectable": selectable}))
    assert normal(written) == normal(expected)


@pytest.mark.parametrize("bound", [False, True])
def test_the_case_pages_forms_read_as_the_widgets_write_them(ngo_a, caseworker, supervisor, bound):
    from casework import services
    from casework.forms import StatusChangeForm
    from casework.templatetags.casework_tags import form_field
    from casework.work_forms import TaskForm
    from tests.factories import CaseFactory, OrganisationFactory

    OrganisationFactory(slug="qatar", name="Qatar & <friends>", kind="intermediary")
    case = CaseFactory(organisation=ngo_a)
    actor = services.Actor.for_user(supervisor)
    data = {"to_status": "verified", "occurred_on": "2024-02-01", "via": "qatar", "note": "a <b>", "version": "1"}
    forms_shown = [
        StatusChangeForm(data if bound else None, case=case, actor=actor),
        TaskForm({"kind": "other", "due_on": "2024-03-01", "note": "x"} if bound else None, organisation_id=ngo_a.pk),
    ]
    for form in forms_shown:
        if bound:
            form.is_valid()
        for field in form:
            expected = render_to_string("casework/_field.html", {"field": field})
            assert normal(form_field(field)) == normal(expected), field.name
