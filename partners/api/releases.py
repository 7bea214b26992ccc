"""The published releases of the figures (DESIGN.md section 10), for partners and for anyone.

Only approved releases: their cells are protected and their headline totals
exact, so what these endpoints give is what ``/public/figures/`` shows. A token
is not needed (a request with one is counted against that token's rate, one
without against its address); an invalid token is still refused. Cacheable,
unlike every other endpoint of the API: a release never changes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from partners.api.authentication import BearerTokenAuthentication
from partners.api.errors import error_response
from partners.api.serializers import ErrorSerializer
from partners.api.throttling import TokenRateThrottle
from reports import selectors
from reports.models import Release

ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Unknown, revoked or expired token (a token is optional)"),
    404: OpenApiResponse(ErrorSerializer, description="No such release"),
    429: OpenApiResponse(ErrorSerializer, description="Throttled; see Retry-After"),
}


class ReleaseView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [TokenRateThrottle]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 200:
            response["Cache-Control"] = f"public, max-age={settings.PUBLIC_FIGURES_CACHE_SECONDS}"
        else:
            response["Cache-Control"] = "no-store"
        return response


def release_body(release: Release) -> dict[str, Any]:
    return {
        "number": release.number,
        "as_of": release.as_of.isoformat(),
        "published_at": release.approved_at.isoformat() if release.approved_at else None,
        "figures": release.figures,
    }


def _one(release: Release | None) -> Response:
    if release is None:
        return error_response(404, code="no_release", message="No release has this number.")
    headers = {"Last-Modified": http_date(release.approved_at.timestamp())} if release.approved_at else {}
    return Response(release_body(release), headers=headers)


class ReleaseListView(ReleaseView):
    @extend_schema(
        tags=["releases"],
        summary="Every published release of the figures, newest first (number, dates, headline totals)",
        operation_id="releases_list",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "results": [
                    {
                        "number": row.number,
                        "as_of": row.as_of.isoformat(),
                        "published_at": row.approved_at.isoformat() if row.approved_at else None,
                        "totals": {"reported": row.reported, "repatriated": row.repatriated},
                        "min_cell": row.min_cell,
                    }
                    for row in selectors.release_list()
                ]
            }
        )


class LatestReleaseView(ReleaseView):
    @extend_schema(
        tags=["releases"],
        summary="The latest published release: exact headline totals, protected cells, the method and its parameters",
        operation_id="releases_latest",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        release = selectors.latest_release()
        if release is None:
            return error_response(404, code="no_release", message="No figures have been published yet.")
        return _one(release)


class ReleaseDetailView(ReleaseView):
    @extend_schema(
        tags=["releases"],
        summary="One published release by its number",
        operation_id="releases_by_number",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request: Request, number: int) -> Response:
        return _one(selectors.release_by_number(number))
