"""``manage.py figures``: the figures computed now, printed as JSON, CSV or HXL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import hxl  # type: ignore[import-untyped]
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Organisation
from casework import services as case_services
from reports.figures import compute_figures
from reports.models import Snapshot
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def register(ngo_a, ngo_b, supervisor):
    qatar = Organisation.objects.get(slug="qatar")
    for index in range(8):
        case = CaseFactory(organisation=ngo_a, reported_on=dt.date(2023, 12, 20) + dt.timedelta(days=index))
        if index < 6:
            case_services.change_status(
                case=case,
                actor=case_services.Actor.for_user(supervisor),
                to_status="repatriated",
                occurred_on=dt.date(2024, 3, 1),
                expected_version=1,
                via=qatar,
            )
    CaseFactory(organisation=ngo_b, reported_on=dt.date(2024, 1, 5), oblast="UA-65")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("figures", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_exact_figures_as_json_by_default(register):
    printed = json.loads(run("--as-of", "2024-02-29"))
    assert printed == compute_figures(as_of=dt.date(2024, 2, 29))
    assert printed["totals"] == {"reported": 9, "repatriated": 0, "outstanding": 9}
    assert printed["monthly"][0]["month"] == "2023-12"


def test_it_defaults_to_today(register):
    assert json.loads(run())["as_of"] == timezone.localdate().isoformat()


def test_it_no_longer_prints_a_published_variant(register):
    """Only releases publish (release_figures); --published is gone, not silently ignored."""
    with pytest.raises(CommandError):
        run("--as-of", "2024-12-31", "--published")


def test_it_prints_csv(register):
    rows = list(csv.DictReader(io.StringIO(run("--as-of", "2024-12-31", "--format", "csv"))))
    assert rows[0]["breakdown"] == "total" and rows[0]["reported"] == "9" and rows[0]["repatriated"] == "6"


def test_it_prints_valid_hxl(register):
    printed = run("--as-of", "2024-12-31", "--format", "hxl")
    source = hxl.data(hxl.input.make_input(io.BytesIO(printed.encode()), hxl.InputOptions(allow_local=True)))
    rows = list(source)
    assert "#adm1+code" in [column.display_tag for column in source.columns]
    total = rows[0]
    assert total.get("#affected+children+reported") == "9" and total.get("#affected+children+returned") == "6"
    via = {row.get("#org+intermediary"): row.get("#affected+children+returned") for row in rows}
    assert via["qatar"] == "6"


def test_it_can_count_one_organisations_cases(register, ngo_b):
    printed = json.loads(run("--as-of", "2024-12-31", "--organisation", ngo_b.slug))
    assert printed["totals"] == {"reported": 1, "repatriated": 0, "outstanding": 1}


def test_it_refuses_a_future_date_an_unknown_organisation_and_a_bad_date(register):
    with pytest.raises(CommandError, match="in the future"):
        run("--as-of", (timezone.localdate() + dt.timedelta(days=1)).isoformat())
    with pytest.raises(CommandError, match="No organisation"):
        run("--organisation", "nobody")
    with pytest.raises(CommandError):
        run("--as-of", "yesterday")


def test_it_can_store_the_figures_as_a_snapshot(register):
    printed = json.loads(run("--as-of", "2024-12-31", "--save"))
    snapshot = Snapshot.objects.get()
    assert snapshot.state == "done" and snapshot.trigger == "command"
    assert printed == snapshot.exact
    with pytest.raises(CommandError, match="every organisation"):
        run("--save", "--organisation", "ngo-a")
