"""The demo data's figures: 20,000 reported and 1,189 repatriated as of 2025-02-02 (takes ~10-20 s, once)."""

from __future__ import annotations

import datetime as dt
import io
import re

import hxl  # type: ignore[import-untyped]
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from reports.figures import compute_figures
from reports.models import Release, Snapshot

pytestmark = pytest.mark.django_db
PASSWORD = "demo-password-for-the-figures-test"
AS_OF = dt.date(2025, 2, 2)


def test_the_demo_figures_are_20000_reported_and_1189_repatriated(settings, tmp_path):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Its own login sheet: never the one of a demo running from this checkout.
    logins = tmp_path / "logins.json"
    call_command("seed_demo", "--password", PASSWORD, logins_file=str(logins), stdout=io.StringIO())

    exact = compute_figures(as_of=AS_OF)
    assert exact["totals"] == {"reported": 20_000, "repatriated": 1_189, "outstanding": 18_811}
    assert sum(exact["by_via"].values()) == 1_189

    printed = io.StringIO()
    call_command("figures", "--as-of", AS_OF.isoformat(), "--format", "hxl", stdout=printed)
    source = hxl.data(hxl.input.make_input(io.BytesIO(printed.getvalue().encode()), hxl.InputOptions(allow_local=True)))
    total = next(iter(source))
    assert total.get("#affected+children+reported") == "20000"
    assert total.get("#affected+children+returned") == "1189"

    # What make demo runs: the first release, whose headline totals are exact; run again, it adds nothing.
    for _run in range(2):
        printed = io.StringIO()
        call_command("release_figures", "--as-of", AS_OF.isoformat(), "--unless-released", stdout=printed)
        assert printed.getvalue().splitlines()[-1] == "1"
    release = Release.objects.get()
    assert release.state == "approved" and release.figures["totals"] == exact["totals"]
    assert Snapshot.objects.count() == 1  # the release's, which the figures page shows
    client = Client()
    client.get(reverse("login"))  # the first request loads the middleware, and its sign-in hooks, in this process
    assert client.login(username="analyst", password=PASSWORD)
    page = client.get(reverse("figures")).content.decode()
    assert "as of 2 Feb 2025" in page
    assert re.search(r'<span class="stat">20,000</span>', page)
    assert re.search(r'<span class="stat">1,189</span>', page)
    # Three charts, each in a laptop and a phone layout.
    assert page.count('class="chart chart-') == 6
    assert page.count('data-layout="narrow"') == 3

    # The children NGO A and NGO B both report, confirmed by the host's supervisor: the register-wide
    # figures count each once (24 fewer children), the records stay 20,000 (DESIGN.md section 4).
    from accounts.models import User
    from linkage import selectors
    from linkage import services as linkage_services

    supervisor = User.objects.get(username="supervisor")
    planted = list(selectors.review_pairs(supervisor, across=True))
    assert len(planted) == 24
    for pair in planted:
        linkage_services.decide(candidate_id=pair.pk, user=supervisor, decision="same", expected="")
    children = compute_figures(as_of=AS_OF)
    assert children["records"] == {"reported": 20_000, "repatriated": 1_189}
    assert children["totals"]["reported"] == 20_000 - 24
    assert children["totals"]["repatriated"] <= 1_189
