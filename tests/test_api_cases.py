"""Reading shared cases: the field allowlist, filters, incremental sync, paging, logging."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from casework import services as case_services
from casework.models import AccessLog, Case
from partners import services
from partners.models import Share
from tests.api_helpers import make_token, share
from tests.conftest import requires_postgres
from tests.factories import CaseFactory, InstitutionFactory, OrganisationFactory

ALLOWED_FIELDS = {
    "reference",
    "owner",
    "access",
    "status",
    "sex",
    "birth_year",
    "age_band",
    "oblast",
    "reported_on",
    "displaced_on",
    "placement",
    "institution",
    "risk_flags",
    "version",
    "last_change_at",
    "updated_at",
}


@pytest.fixture
def owner(db):
    return OrganisationFactory(slug="ngo-owner")


@pytest.fixture
def partner(db):
    from accounts.models import Organisation

    return Organisation.objects.get(slug="qatar")


@pytest.fixture
def partner_client(partner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner, 'read')[1]}")
    return client


def test_it_lists_only_shared_cases_with_only_allowed_fields(owner, partner, partner_client, supervisor):
    shared = CaseFactory(
        organisation=owner, notes="internal remark", institution=InstitutionFactory(), risk_military=True
    )
    CaseFactory(organisation=owner)  # not shared
    share(shared, partner)
    response = partner_client.get("/api/v1/cases/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    results = response.json()["results"]
    assert [item["reference"] for item in results] == [shared.reference]
    item = results[0]
    assert set(item) == ALLOWED_FIELDS
    assert item["risk_flags"] == ["military"]
    assert item["access"] == "read"
    assert item["age_band"] == "10-13"
    assert "internal remark" not in response.text


def test_it_shows_history_without_notes_or_names_and_an_etag(owner, partner, partner_client, supervisor):
    case = CaseFactory(organisation=owner)
    supervisor.organisation = owner
    supervisor.save()
    case_services.change_status(
        case=case,
        actor=case_services.Actor.for_user(supervisor),
        to_status="withdrawn",
        occurred_on=dt.date(2023, 3, 1),
        expected_version=1,
        note="secret internal reason",
    )
    share(case, partner)
    response = partner_client.get(f"/api/v1/cases/{case.reference}/")
    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    history = response.json()["history"]
    assert history == [
        {
            "from_status": "reported",
            "to_status": "withdrawn",
            "occurred_on": "2023-03-01",
            "recorded_at": history[0]["recorded_at"],
            "via": None,
            "is_correction": False,
            "version": 2,
        }
    ]
    assert "secret internal reason" not in response.text
    assert "supervisor" not in response.text


def test_it_filters_by_status_and_oblast_and_refuses_bad_values(owner, partner, partner_client):
    wanted = CaseFactory(organisation=owner, oblast="UA-65", status="located")
    other = CaseFactory(organisation=owner, oblast="UA-14")
    for case in (wanted, other):
        share(case, partner)
    refs = lambda r: [i["reference"] for i in r.json()["results"]]  # noqa: E731
    assert refs(partner_client.get("/api/v1/cases/", {"status": "located"})) == [wanted.reference]
    assert refs(partner_client.get("/api/v1/cases/", {"oblast": "UA-14"})) == [other.reference]
    bad = partner_client.get("/api/v1/cases/", {"status": "lost", "updated_since": "yesterday"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"status", "updated_since"}


def test_it_syncs_incrementally_with_updated_since(owner, partner, partner_client):
    old = CaseFactory(organisation=owner)
    new = CaseFactory(organisation=owner)
    for case in (old, new):
        share(case, partner)
    Case.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(days=3))
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    response = partner_client.get("/api/v1/cases/", {"updated_since": since})
    assert [i["reference"] for i in response.json()["results"]] == [new.reference]


def test_it_pages_with_a_cursor_and_caps_the_page_size(owner, partner, partner_client):
    cases = CaseFactory.create_batch(5, organisation=owner)
    services.share_cases(owner=owner, partner=partner, cases=cases, scope="read", expires_at=None, shared_by=None)
    seen = []
    url = "/api/v1/cases/?page_size=2"
    while url:
        body = partner_client.get(url).json()
        assert len(body["results"]) <= 2
        seen += [i["reference"] for i in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(c.reference for c in cases)
    big = partner_client.get("/api/v1/cases/?page_size=100000")
    assert big.status_code == 200 and len(big.json()["results"]) == 5


def test_it_keeps_the_query_count_constant_whatever_the_page_size(owner, partner, partner_client):
    cases = CaseFactory.create_batch(30, organisation=owner, institution=InstitutionFactory())
    services.share_cases(owner=owner, partner=partner, cases=cases, scope="read", expires_at=None, shared_by=None)
    counts = {}
    for size in (1, 30):
        partner_client.get("/api/v1/cases/?page_size=1")  # warm the token's last-use write
        with CaptureQueriesContext(connection) as queries:
            assert partner_client.get(f"/api/v1/cases/?page_size={size}").status_code == 200
        counts[size] = (len(queries), [q["sql"] for q in queries.captured_queries])
    assert counts[1][0] == counts[30][0], "\n".join(counts[30][1])


def test_it_logs_every_case_read(owner, partner, partner_client):
    cases = CaseFactory.create_batch(3, organisation=owner)
    services.share_cases(owner=owner, partner=partner, cases=cases, scope="read", expires_at=None, shared_by=None)
    partner_client.get("/api/v1/cases/")
    partner_client.get(f"/api/v1/cases/{cases[0].reference}/")
    rows = AccessLog.objects.filter(door="api")
    assert sorted(rows.filter(action="list").values_list("case_id", flat=True)) == sorted(c.pk for c in cases)
    view = rows.get(action="view")
    assert (view.case_id, view.organisation_id, view.token.organisation_id) == (cases[0].pk, partner.pk, partner.pk)


def test_it_forgets_a_revoked_or_expired_share_on_the_next_request(owner, partner, partner_client):
    case = CaseFactory(organisation=owner)
    made = share(case, partner)
    url = f"/api/v1/cases/{case.reference}/"
    assert partner_client.get(url).status_code == 200
    services.revoke_shares(owner=owner, shares=[made], revoked_by=None)
    assert partner_client.get(url).status_code == 404
    assert partner_client.get("/api/v1/cases/").json()["results"] == []
    again = share(case, partner)
    assert partner_client.get(url).status_code == 200
    Share.objects.filter(pk=again.pk).update(expires_at=timezone.now())
    assert partner_client.get(url).status_code == 404


def test_it_lists_intermediaries(partner_client):
    body = partner_client.get("/api/v1/intermediaries/").json()
    assert {"qatar", "vatican", "south-africa", "icrc"} <= {item["slug"] for item in body}


def test_it_refuses_bad_tokens_with_401(db):
    client = APIClient()
    assert client.get("/api/v1/cases/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer rr_nope_nope")
    response = client.get("/api/v1/cases/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    client.credentials(HTTP_AUTHORIZATION="Token abc")
    assert client.get("/api/v1/cases/").status_code == 401


def test_it_answers_unknown_urls_and_big_bodies_in_the_error_shape(partner_client):
    missing = partner_client.get("/api/v1/nothing-here/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    big = partner_client.post("/api/v1/cases/C-0000-0000/status-changes/", {"note": "x" * 20000}, format="json")
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"


def test_it_throttles_per_token(monkeypatch, partner):
    from partners.api.views import TokenRateThrottle

    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner)[1]}")
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(partner)[1]}")
    codes = [first.get("/api/v1/intermediaries/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = first.get("/api/v1/intermediaries/")
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"
    assert second.get("/api/v1/intermediaries/").status_code == 200  # per token, not per address


@pytest.mark.parametrize(
    "since", ["0701-01-03T23:43:40-23:18", "9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+23:00"]
)
def test_it_takes_any_valid_offset_in_updated_since_without_failing(partner_client, since):
    response = partner_client.get("/api/v1/cases/", {"updated_since": since})
    assert response.status_code in {200, 400}


@pytest.mark.parametrize("threshold", [1, 1_000_000])
@pytest.mark.parametrize(("owns", "shares"), [(True, True), (False, True), (True, False)])
def test_it_sees_the_same_cases_whichever_plan_is_chosen(monkeypatch, owner, partner, threshold, owns, shares):
    from partners import selectors

    monkeypatch.setattr(selectors, "DENSE_THRESHOLD", threshold)
    shared = CaseFactory.create_batch(3, organisation=owner) if shares else []
    CaseFactory.create_batch(2, organisation=owner)  # not shared
    own = [CaseFactory(organisation=partner)] if owns else []
    services.share_cases(owner=owner, partner=partner, cases=shared, scope="read", expires_at=None, shared_by=None)
    seen = set(selectors.api_cases(partner.pk).values_list("reference", flat=True))
    assert seen == {case.reference for case in [*shared, *own]}


def test_it_pages_exactly_through_cases_changed_at_the_same_instant(owner, partner, partner_client):
    cases = CaseFactory.create_batch(7, organisation=owner)
    services.share_cases(owner=owner, partner=partner, cases=cases, scope="read", expires_at=None, shared_by=None)
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(updated_at=timezone.now())  # a bulk import's ties
    seen, url = [], "/api/v1/cases/?page_size=3"
    while url:
        body = partner_client.get(url).json()
        seen += [item["reference"] for item in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(c.reference for c in cases) and len(seen) == 7


def test_it_refuses_a_bad_cursor_or_page_size(partner_client):
    for params, field in (
        ({"cursor": "nonsense"}, "cursor"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": 0}, "page_size"),
    ):
        response = partner_client.get("/api/v1/cases/", params)
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]


def _page_two_plan(client: APIClient) -> str:
    """EXPLAIN of the case query behind a list's second page, as the view sends it."""
    url = client.get("/api/v1/cases/?page_size=50").json()["next"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    # The page's query: the one with the cursor's row comparison (its ORDER BY names the columns by position).
    cursor_condition = '("casework_case"."updated_at", "casework_case"."id") >='
    [sql] = [q["sql"] for q in queries.captured_queries if cursor_condition in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_every_page_walks_the_updated_at_index_when_a_bulk_import_shares_one_instant(owner, partner, partner_client):
    # PostgreSQL estimated "(updated_at, id) > cursor" as "updated_at > stamp": about no row when every case of
    # an import has that stamp, so pages after the first joined and sorted every later case (seconds at 1,000,000).
    cases = Case.objects.bulk_create(CaseFactory.build(organisation=owner) for _ in range(5000))
    Share.objects.bulk_create(
        Share(case=case, owner=owner, partner=partner, scope="read") for case in cases[::2]
    )  # 2,500 shared (past DENSE_THRESHOLD): the partner's plan walks the cases and probes the shares
    Case.objects.filter(organisation=owner).update(updated_at=timezone.now())
    # Committed (a transactional test), so that the tables' owner, who alone may ANALYZE them where the
    # application has a role of its own (CI), sees the rows.
    from accounts.management.commands.migrate import as_owner

    with as_owner(), connection.cursor() as cursor:
        cursor.execute("ANALYZE casework_case, partners_share")
    owner_client = APIClient()
    owner_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(owner, 'read')[1]}")
    for client in (partner_client, owner_client):
        plan = _page_two_plan(client)
        assert "Index Scan using case_updated_id on casework_case" in plan, plan
        assert "Sort Key: casework_case.updated_at" not in plan, plan  # the index gives the order: no sort of all


def test_a_cursor_at_the_largest_id_continues_with_later_instants_only(owner, partner, partner_client):
    import base64

    from partners.api.views import MAX_ID

    earlier, later = CaseFactory.create_batch(2, organisation=owner)
    services.share_cases(
        owner=owner, partner=partner, cases=[earlier, later], scope="read", expires_at=None, shared_by=None
    )
    stamp = timezone.now()
    Case.objects.filter(pk=earlier.pk).update(updated_at=stamp)
    Case.objects.filter(pk=later.pk).update(updated_at=stamp + dt.timedelta(seconds=1))
    cursor = base64.urlsafe_b64encode(f"{stamp.isoformat()}|{MAX_ID}".encode()).decode()
    body = partner_client.get("/api/v1/cases/", {"cursor": cursor}).json()
    assert [item["reference"] for item in body["results"]] == [later.reference]


def test_a_listed_case_reads_as_the_same_case_alone(owner, partner, partner_client):
    # The list reads values (PARTNER_CASE_VALUES), a case alone reads the case: the same fields, the same way.
    institution = InstitutionFactory()
    cases = [
        CaseFactory(organisation=owner, institution=institution, birth_year=2012, risk_adoption=True),
        CaseFactory(
            organisation=owner,
            birth_year=None,
            displaced_on=dt.date(2022, 4, 1),
            displaced_precision="month",
            risk_military=True,
            risk_medical=True,
        ),
        CaseFactory(organisation=owner, displaced_on=dt.date(2022, 3, 15), displaced_precision="day"),
    ]
    share(cases[0], partner, "read")
    share(cases[1], partner, "update")
    share(cases[2], partner, "read")
    listed = partner_client.get("/api/v1/cases/").json()["results"]
    assert len(listed) == 3
    for row in listed:
        alone = partner_client.get(f"/api/v1/cases/{row['reference']}/").json()
        assert {key: value for key, value in alone.items() if key != "history"} == row
    by_reference = {row["reference"]: row for row in listed}
    first, second, third = (by_reference[case.reference] for case in cases)
    assert first["institution"]["code"] == institution.code and first["risk_flags"] == ["adoption"]
    assert (second["displaced_on"], second["age_band"], second["access"]) == ("2022-04", "unknown", "update")
    assert second["risk_flags"] == ["military", "medical"] and second["institution"] is None
    assert (third["displaced_on"], third["access"]) == ("2022-03-15", "read")
