"""Schemathesis against the OpenAPI schema, with valid tokens: no 5xx, no response that breaks the schema."""

from __future__ import annotations

import collections
import datetime as dt
from uuid import uuid4

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from casework.models import Case
from partners.models import CaseList
from tests.api_helpers import make_token, share
from tests.factories import CaseFactory, OrganisationFactory
from tests.list_helpers import sent_list


@pytest.fixture
def api_schema(db, settings):
    from accounts.models import Organisation

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    owner = OrganisationFactory(slug="ngo-owner")
    partner = Organisation.objects.get(slug="qatar")
    cases = [CaseFactory(organisation=owner, reported_on=dt.date(2023, 1, 10)) for _ in range(3)]
    for case in cases:
        share(case, partner, "update")
    sent_list(owner, partner, cases[:2])
    plain = make_token(partner, "update")[1]
    # As Django's test client does: a request's end must not close the test's
    # connection (its open transaction would look unusable and be closed).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # A fresh handler, built after the test settings (no HTTPS redirect) are in place.
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())
    schema.config.headers = {"Authorization": f"Bearer {plain}"}
    try:
        yield schema
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# What the issue asks (no 5xx, every response in its schema) and that every status is documented.
CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]


def test_it_keeps_to_its_schema(api_schema):
    references = list(Case.objects.values_list("reference", flat=True))
    list_ids = list(CaseList.objects.values_list("pk", flat=True))
    seen: collections.Counter[tuple[str, int]] = collections.Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/cases/", "/api/v1/cases/{reference}/status-changes/"}
    for operation in operations:

        @given(
            case=operation.as_strategy(),
            reference=st.sampled_from([*references, None]),
            real_version=st.booleans(),
            list_id=st.sampled_from([*list_ids, None]),
        )
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case, reference, real_version, list_id) -> None:
            # Aim most requests at real shared cases, with their real version, so writes get exercised.
            if reference and case.path_parameters and "reference" in case.path_parameters:
                case.path_parameters["reference"] = reference
                if real_version and case.operation.method.upper() == "POST":
                    version = Case.objects.get(reference=reference).version
                    case.headers = {**(case.headers or {}), "If-Match": f'"{version}"', "Idempotency-Key": str(uuid4())}
            if list_id and case.path_parameters and "list_id" in case.path_parameters:
                case.path_parameters["list_id"] = list_id
                if case.operation.method.upper() == "POST":
                    case.headers = {**(case.headers or {}), "Idempotency-Key": str(uuid4())}
            response = case.call()
            seen[(case.operation.label, response.status_code)] += 1
            assert response.status_code < 500, (case.operation.label, response.status_code, response.text[:500])
            case.validate_response(response, checks=CHECKS)

        check()
    # The run reached the real cases, not only 404s.
    assert seen[("GET /api/v1/cases/{reference}/", 200)] > 0, seen
    assert seen[("GET /api/v1/cases/", 200)] > 0, seen
    assert seen[("GET /api/v1/lists/{list_id}/", 200)] > 0, seen
    assert sum(n for (label, status), n in seen.items() if label.startswith("POST") and status != 404) > 0, seen
