"""The permission matrix, generated from the URL configuration.

Every API endpoint and method, for every kind of token, against every kind of
case, with the expected status. An endpoint missing from EXPECTED fails.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from casework.models import Case, Status
from tests.api_helpers import build_world
from tests.list_helpers import sent_list

METHODS = ["get", "post", "put", "patch", "delete"]
VALID_TOKENS = {"owner", "partner_read", "partner_update", "unrelated"}
ON_LIST = {"shared_update", "shared_read"}
NEXT = {
    Status.REPORTED: "located",
    Status.LOCATED: "return_requested",
    Status.RETURN_REQUESTED: "repatriated",
    Status.REPATRIATED: "reunified",
}


def api_routes() -> dict[str, str]:
    """URL name -> route, for every pattern under api/v1/."""
    routes: dict[str, str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if route.startswith("api/v1/"):
                    routes[pattern.name or route] = route

    walk(get_resolver().url_patterns, "")
    return routes


def case_visible(token: str, case_kind: str) -> bool:
    return token == "owner" or (token.startswith("partner") and case_kind in {"shared_update", "shared_read"})


def expect_public(token, case_kind, method):
    return 200 if method == "get" else 405


def expect_list(token, case_kind, method):
    if token not in VALID_TOKENS:
        return 401
    return 200 if method == "get" else 405


def expect_case_detail(token, case_kind, method):
    # A wrong method is refused the same way for every reference: it reveals nothing.
    if token not in VALID_TOKENS:
        return 401
    if method != "get":
        return 405
    return 200 if case_visible(token, case_kind) else 404


def expect_status_change(token, case_kind, method):
    if token not in VALID_TOKENS:
        return 401
    if method != "post":
        return 405
    if not case_visible(token, case_kind):
        return 404
    if token == "owner":
        return 201
    if token == "partner_read" or case_kind == "shared_read":
        return 403
    return 201


def expect_list_detail(token, case_kind, method):
    # The open list sent to the partner holds the two shared cases; nobody else's token finds it.
    if token not in VALID_TOKENS:
        return 401
    if method != "get":
        return 405
    return 200 if token.startswith("partner") else 404


def expect_list_answer(token, case_kind, method):
    if token not in VALID_TOKENS:
        return 401
    if method != "post":
        return 405
    if not token.startswith("partner") or case_kind not in ON_LIST:
        return 404
    return 201 if token == "partner_update" else 403


def expect_releases(token, case_kind, method):
    # Public: no token needed, but a token that is presented must be valid. No release exists in this test.
    if token is not None and token not in VALID_TOKENS and token != "none":
        return 401
    return 200 if method == "get" else 405


def expect_release(token, case_kind, method):
    if token is not None and token not in VALID_TOKENS and token != "none":
        return 401
    return 404 if method == "get" else 405


EXPECTED = {
    "api-case-list": expect_list,
    "api-intermediary-list": expect_list,
    "api-release-list": expect_releases,
    "api-release-latest": expect_release,
    "api-release-detail": expect_release,
    "api-list-list": expect_list,
    "api-list-detail": expect_list_detail,
    "api-list-answer-create": expect_list_answer,
    "api-case-detail": expect_case_detail,
    "api-status-change-create": expect_status_change,
    "api-schema": expect_public,
    "api-docs": expect_public,
}


def test_it_covers_every_api_endpoint():
    assert set(api_routes()) == set(EXPECTED), "add the new endpoint to EXPECTED with its rules"


@pytest.mark.django_db
def test_it_answers_every_endpoint_method_token_and_case_as_expected():
    world = build_world()
    sent = sent_list(world.owner, world.partner, [world.cases[kind] for kind in sorted(ON_LIST)])
    routes = api_routes()
    mismatches = []
    for name, token_kind, case_kind, method in itertools.product(sorted(routes), world.tokens, world.cases, METHODS):
        case = Case.objects.get(pk=world.cases[case_kind].pk)
        route = routes[name].replace("<str:reference>", case.reference).replace("<int:list_id>", str(sent.pk))
        url = "/" + route.replace("<int:number>", "1")
        client = APIClient()
        plain = world.tokens[token_kind]
        if plain:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        today = dt.date.today().isoformat()
        body = {
            "status": NEXT.get(case.status, "reunified"),
            "occurred_on": today,
            "answer": "received",
            "answered_on": today,
        }
        headers = {"HTTP_IF_MATCH": f'"{case.version}"', "HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
        response = getattr(client, method)(url, body, format="json", **headers)
        expected = EXPECTED[name](token_kind, case_kind, method)
        if response.status_code != expected:
            mismatches.append(
                f"{method.upper()} {name} token={token_kind} case={case_kind}: {response.status_code} != {expected}"
            )
        if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            error = response.json()["error"]
            assert error["status"] == response.status_code and error["message"]
    assert not mismatches, "\n".join(mismatches)
