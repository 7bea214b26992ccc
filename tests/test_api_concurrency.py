"""50 concurrent identical POSTs make exactly one change (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Organisation
from casework.models import Case, StatusChange
from partners.models import IdempotencyRecord
from tests.api_helpers import make_token, share
from tests.conftest import requires_postgres
from tests.factories import CaseFactory, OrganisationFactory

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_it_makes_one_change_from_fifty_identical_concurrent_posts():
    owner = OrganisationFactory(slug="ngo-owner")
    partner = Organisation.objects.get(slug="qatar")
    case = CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10))
    share(case, partner, "update")
    plain = make_token(partner, "update")[1]
    barrier = threading.Barrier(50)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
            barrier.wait(timeout=30)
            response = client.post(
                f"/api/v1/cases/{case.reference}/status-changes/",
                {"status": "repatriated", "occurred_on": dt.date.today().isoformat(), "via": "qatar"},
                format="json",
                HTTP_IF_MATCH='"1"',
                HTTP_IDEMPOTENCY_KEY="same-key-for-all",
            )
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 50
    assert {status for status, _ in results} == {201}, sorted({status for status, _ in results})
    assert len({json.dumps(body, sort_keys=True) for _, body in results}) == 1  # all saw the same response
    assert StatusChange.objects.filter(case=case).count() == 1
    assert Case.objects.get(pk=case.pk).version == 2
    assert IdempotencyRecord.objects.count() == 1
