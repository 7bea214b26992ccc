"""NUL characters, unpaired surrogates, over-long addresses and values: a 400 (or a 404), never a 500.

Under /api/ every error, 500 included, has the API's one shape. PostgreSQL refuses a NUL
in text, so there a NUL that reached a query was a 500; the tests at the end check on
PostgreSQL that the API's own checks stop it even without the site-wide guard.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from casework.models import StatusChange
from tests.api_helpers import auth, build_world
from tests.conftest import requires_postgres


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api(world):
    client = Client(raise_request_exception=False)
    client.defaults.update(auth(world.tokens["partner_update"]))
    return client


@pytest.fixture
def web(world, supervisor):
    client = Client(raise_request_exception=False)
    client.force_login(supervisor)
    return client


def api_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and set(error) == {"status", "code", "message", "fields"}
    return error


def status_change(client, reference: str, body: str | bytes, **headers: str):
    return client.post(
        f"/api/v1/cases/{reference}/status-changes/",
        data=body,
        content_type="application/json",
        **{"HTTP_IF_MATCH": '"1"', "HTTP_IDEMPOTENCY_KEY": "key-1", **headers},
    )


# --- the API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/cases/C-%00/", "path"),
        ("/api/v1/cases/C-%00/status-changes/", "path"),
        ("/api/v1/cases/" + "C" * 5000 + "/", "path"),
        ("/api/v1/cases/?updated_since=2024-01-01T00:00:00%00", "updated_since"),
        ("/api/v1/cases/?status=located%00", "status"),
        ("/api/v1/cases/?oblast=%00", "oblast"),
        ("/api/v1/cases/?page_size=1%00", "page_size"),
        ("/api/v1/cases/?cursor=%00", "cursor"),
        ("/api/v1/cases/?x%00=1", "query"),
        ("/api/v1/cases/?q=" + "a" * 10_000, "query"),
    ],
)
def test_a_nul_or_an_overlong_address_is_a_400_in_the_api_shape(api, path, field):
    error = api_error(api.get(path))
    assert list(error["fields"]) == [field]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_IDEMPOTENCY_KEY", "key\x00"),
        ("HTTP_IF_MATCH", '"1\x00"'),
        ("HTTP_COOKIE", "sessionid=abcdefgh\x00ijkl"),
    ],
)
def test_a_nul_in_a_header_is_a_400_in_the_api_shape(api, world, header, value):
    case = world.cases["shared_update"]
    body = json.dumps({"status": "located", "occurred_on": "2023-02-01"})
    error = api_error(status_change(api, case.reference, body, **{header: value}))
    assert list(error["fields"]) == [header.removeprefix("HTTP_").replace("_", "-").title()]
    assert not StatusChange.objects.filter(case=case).exists()


def test_a_nul_in_the_token_is_a_400_in_the_api_shape(world):
    response = Client(raise_request_exception=False).get("/api/v1/cases/", HTTP_AUTHORIZATION="Bearer rr_\x00_x")
    assert list(api_error(response)["fields"]) == ["Authorization"]


@pytest.mark.parametrize(
    "body",
    [
        r'{"status": "located", "occurred_on": "2023-02-01", "note": "\ud800"}',
        r'{"status": "located", "occurred_on": "2023-02-01", "note": "a\u0000b"}',
        r'{"status": "located", "occurred_on": "2023-02-01", "via": "\u0000"}',
        r'{"status": "located", "occurred_on": "2023-02-01", "via": "\udfff"}',
        r'{"status": "\ud800", "occurred_on": "2023-02-01"}',
        r'{"status": "located", "occurred_on": "2023-02-01", "\ud800": 1}',
        r'{"status": "located", "occurred_on": "2023-02-01", "note": ["x", {"y": "\u0000"}]}',
        "[" * 8000 + "]" * 8000,  # deeper than the parser recurses
    ],
)
def test_a_json_body_the_database_cannot_take_is_a_400(api, world, body):
    case = world.cases["shared_update"]
    error = api_error(status_change(api, case.reference, body))
    assert error["code"] == "parse_error"
    assert not StatusChange.objects.filter(case=case).exists()


def test_an_unpaired_surrogate_in_a_note_was_a_500_and_a_valid_note_still_passes(api, world):
    case = world.cases["shared_update"]
    body = {"status": "located", "occurred_on": "2023-02-01", "note": "Згідно з партнером \U0001f600"}
    response = status_change(api, case.reference, json.dumps(body))  # escaped as a surrogate pair: valid
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("if_match", ['"' + "9" * 30 + '"', '"' + "9" * 5000 + '"'])
def test_an_overlong_if_match_is_a_400(api, world, if_match):
    case = world.cases["shared_update"]
    body = json.dumps({"status": "located", "occurred_on": "2023-02-01"})
    response = status_change(api, case.reference, body, HTTP_IF_MATCH=if_match)
    assert api_error(response)["fields"] == {"If-Match": ["Not an ETag of this API."]}


def test_a_cursor_naming_an_id_beyond_any_integer_column_is_a_400(api):
    cursor = base64.urlsafe_b64encode(b"2024-01-01T00:00:00+00:00|99999999999999999999999").decode()
    assert list(api_error(api.get("/api/v1/cases/", {"cursor": cursor}))["fields"]) == ["cursor"]


def test_an_idempotency_key_with_a_control_character_is_a_400(api, world):
    case = world.cases["shared_update"]
    body = json.dumps({"status": "located", "occurred_on": "2023-02-01"})
    response = status_change(api, case.reference, body, HTTP_IDEMPOTENCY_KEY="key\x07")
    assert list(api_error(response)["fields"]) == ["Idempotency-Key"]


def test_a_server_error_in_the_api_has_the_api_shape(api, monkeypatch):
    def broken():
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr("partners.api.views.intermediaries", broken)
    error = api_error(api.get("/api/v1/intermediaries/"), 500)
    assert error["code"] == "server_error"
    assert "synthetic failure" not in json.dumps(error)


# --- the pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/cases/%00/",
        "/cases/C-%00/edit/",
        "/cases/?q=%00",
        "/cases/?status=%00",
        "/cases/?page=%00",
        "/institutions/%00/",
        "/institutions/?q=%00",
        "/organisation/webhooks/?page=%00",
        "/cases/" + "C" * 5000 + "/",
        "/cases/?q=" + "a" * 10_000,
    ],
)
def test_a_nul_or_an_overlong_address_is_a_400_page(web, path):
    response = web.get(path)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "Bad request" in response.text


@pytest.mark.parametrize("field", ["via", "note"])
def test_a_nul_in_a_form_is_a_400_page(web, case, field):
    """The intermediary is looked up by its slug: with a NUL, PostgreSQL refused the query (a 500)."""
    values = {"to_status": "located", "occurred_on": "2023-02-01", "via": "qatar", "note": ""}
    values[field] += "\x00"
    response = web.post(f"/cases/{case.reference}/status/", values)
    assert response.status_code == 400
    assert not StatusChange.objects.filter(case=case).exists()


@pytest.mark.parametrize("cookie", ['sessionid="abcdefgh\\000ijkl"', "sessionid=abcdefgh\x00ijkl"])
def test_a_nul_in_the_session_cookie_is_a_400_page(world, cookie):
    """Quoted, a cookie's \\000 is unquoted to a NUL, and the session's key was looked up with it."""
    response = Client(raise_request_exception=False).get("/cases/", HTTP_COOKIE=cookie)
    assert response.status_code == 400


def test_a_query_that_is_not_utf8_is_read_with_replacement_characters(web):
    assert web.get("/cases/?q=%ED%A0%80").status_code in {200, 400}  # never a 500


def test_a_server_error_on_a_page_is_the_error_page(web, monkeypatch):
    def broken(user):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr("casework.selectors.institutions_with_counts", broken)
    response = web.get("/institutions/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html") and "Something went wrong" in response.text


# --- PostgreSQL: the API's own checks, without the site-wide guard ----------------------------------


@pytest.fixture
def unguarded(settings):
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != "config.errors.MalformedRequestMiddleware"]


@requires_postgres
def test_on_postgresql_a_nul_in_a_reference_is_a_404(api, unguarded):
    api_error(api.get("/api/v1/cases/C-%00/"), 404)


@requires_postgres
def test_on_postgresql_a_nul_in_the_token_is_a_401(world, unguarded):
    response = Client(raise_request_exception=False).get("/api/v1/cases/", HTTP_AUTHORIZATION="Bearer rr_a\x00_x")
    api_error(response, 401)


@requires_postgres
def test_on_postgresql_a_nul_in_the_idempotency_key_is_a_400(api, world, unguarded):
    case = world.cases["shared_update"]
    body = json.dumps({"status": "located", "occurred_on": "2023-02-01"})
    api_error(status_change(api, case.reference, body, HTTP_IDEMPOTENCY_KEY="key\x00"))


@requires_postgres
@pytest.mark.parametrize("note", [r"a\u0000b", r"\ud800"])
def test_on_postgresql_a_json_string_the_database_refuses_is_a_400(api, world, unguarded, note):
    case = world.cases["shared_update"]
    body = '{"status": "located", "occurred_on": "2023-02-01", "note": "' + note + '"}'
    assert api_error(status_change(api, case.reference, body))["code"] == "parse_error"
    assert not StatusChange.objects.filter(case=case).exists()
