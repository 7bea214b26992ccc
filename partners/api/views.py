"""The partner API (DESIGN.md section 6): thin views over selectors and services."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any, cast

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.models import ApiToken, Organisation
from casework import services
from casework.audit import log_access
from casework.models import AccessLog, Case, Oblast, Status
from casework.references import REFERENCE_RE, normalise_reference
from partners.api import preconditions
from partners.api.authentication import BearerTokenAuthentication
from partners.api.errors import error_response
from partners.api.preconditions import Problem, etag
from partners.api.serializers import (
    PARTNER_CASE_VALUES,
    ErrorSerializer,
    IntermediarySerializer,
    PartnerCaseDetailSerializer,
    PartnerCaseSerializer,
    PartnerStatusChangeSerializer,
    StatusChangeInputSerializer,
    StatusChangeResultSerializer,
    partner_case_row,
)
from partners.api.throttling import TokenRateThrottle
from partners.models import ShareScope
from partners.selectors import api_case_history, api_cases, intermediaries
from partners.tokens import token_actor

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input"),
    401: OpenApiResponse(ErrorSerializer, description="Missing, unknown, revoked or expired token"),
    404: OpenApiResponse(ErrorSerializer, description="Not found, or not shared with you"),
    429: OpenApiResponse(ErrorSerializer, description="Throttled; see Retry-After"),
}


class HasToken(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, ApiToken)


class PartnerView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated, HasToken]
    throttle_classes = [TokenRateThrottle]

    @property
    def token(self) -> ApiToken:
        return cast(ApiToken, self.request.auth)

    def log(self, action: str, case_ids: list[int | None]) -> None:
        log_access(
            action=action,
            door=AccessLog.Door.API,
            organisation_id=self.token.organisation_id,
            case_ids=case_ids,
            token=self.token,
            request=self.request,
        )

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # Case data must not linger in shared or browser caches.
        response["Cache-Control"] = "no-store"
        return response


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, handed to the database in UTC: any offset Python accepts is safe."""

    def clean(self, value: Any) -> dt.datetime | None:
        parsed = super().clean(value)
        if parsed is None:
            return None
        try:
            return cast(dt.datetime, parsed).astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("This date-time is out of range.", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CaseFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    oblast = django_filters.MultipleChoiceFilter(choices=Oblast.choices)
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Case
        fields = ["status", "oblast", "updated_since"]


MAX_ID = 2**63 - 1  # the largest id a (big) integer column holds


class CaseKeysetPagination(BasePagination):
    """Pages in (updated_at, id) order, the cursor naming the last case seen.

    Oldest change first, so a client syncing with updated_since pages forward in
    time. Unlike an offset, the position stays exact when many cases share an
    updated_at (a bulk import) and when cases change between pages, and every
    page costs the same: an index range scan from the cursor.
    """

    page_size = 50
    max_page_size = 200
    invalid_cursor_message = "The cursor is not valid: use the next link of a page."

    def _page_size(self, request: Request) -> int:
        try:
            size = int(request.query_params.get("page_size", self.page_size))
        except ValueError:
            raise ValidationError({"page_size": ["A whole number from 1 to 200."]}) from None
        if size < 1:
            raise ValidationError({"page_size": ["A whole number from 1 to 200."]})
        return min(size, self.max_page_size)

    def _position(self, request: Request) -> tuple[dt.datetime, int] | None:
        raw = request.query_params.get("cursor")
        if raw is None:
            return None
        try:
            stamp, _sep, ident = base64.urlsafe_b64decode(raw.encode()).decode().partition("|")
            position = dt.datetime.fromisoformat(stamp).astimezone(dt.UTC), int(ident)
        except (ValueError, UnicodeDecodeError, OverflowError):
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None
        if not 0 <= position[1] <= MAX_ID:  # the database would refuse the number: a 500
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return position

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any]:
        self.request = request
        size = self._page_size(request)
        position = self._position(request)
        queryset = queryset.order_by("updated_at", "id")
        if position is not None:
            table = Case._meta.db_table
            stamp = Case._meta.get_field("updated_at").get_db_prep_value(position[0], connection)
            # A row comparison, which walks the (updated_at, id) index from the cursor. Written as
            # >= (stamp, id + 1), not > (stamp, id): the same rows (ids are whole numbers), but
            # PostgreSQL estimates a row comparison by its leading column and operator alone, and
            # "updated_at > stamp" is about no row when many cases share the stamp (a bulk import):
            # it then joins and sorts every later case (seconds at 1,000,000). "updated_at >= stamp"
            # counts the cases sharing it, more rather than fewer, so every page walks the index.
            if position[1] < MAX_ID:
                where, params = f'("{table}"."updated_at", "{table}"."id") >= (%s, %s)', [stamp, position[1] + 1]
            else:  # no larger id: only later stamps
                where, params = f'"{table}"."updated_at" > %s', [stamp]
            queryset = queryset.extra(where=[where], params=params)  # noqa: S610 (fixed SQL, values as parameters)
        rows = list(queryset[: size + 1])
        self.has_next = len(rows) > size
        self.page = rows[:size]
        return self.page

    def _next_link(self) -> str | None:
        if not self.has_next or not self.page:
            return None
        last = self.page[-1]  # the values of a case (PARTNER_CASE_VALUES)
        token = f"{last['updated_at'].astimezone(dt.UTC).isoformat()}|{last['id']}"
        cursor = base64.urlsafe_b64encode(token.encode()).decode()
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"next": self._next_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "The position after which to continue: take it from a page's next link.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": "Cases per page (default 50, at most 200).",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]


@extend_schema(
    tags=["cases"],
    summary="Cases shared with your organisation",
    parameters=[
        OpenApiParameter("updated_since", OpenApiTypes.DATETIME, description="Only cases changed at or after this."),
    ],
    responses={200: PartnerCaseSerializer(many=True), **ERRORS},
)
class CaseListView(PartnerView, generics.ListAPIView[Case]):
    serializer_class = PartnerCaseSerializer
    pagination_class = CaseKeysetPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = CaseFilter

    def get_queryset(self) -> QuerySet[Case]:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular inspecting the view
            return Case.objects.none()
        return api_cases(self.token.organisation_id)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Read as values, not as cases (PARTNER_CASE_VALUES): the same allowlisted fields, a third of the cost.
        queryset = self.filter_queryset(self.get_queryset()).values(*PARTNER_CASE_VALUES)
        page = self.paginate_queryset(queryset) or []
        self.log(AccessLog.Action.LIST, [row["id"] for row in page])
        return self.get_paginated_response([partner_case_row(row) for row in page])


def _visible_case(view: PartnerView, reference: str) -> Case:
    reference = normalise_reference(reference)
    if not REFERENCE_RE.fullmatch(reference):
        raise Http404  # not a reference: nothing to look up
    case = api_cases(view.token.organisation_id).filter(reference=reference).first()
    if case is None:
        raise Http404
    return case


@extend_schema(
    tags=["cases"], summary="One case with its status history", responses={200: PartnerCaseDetailSerializer, **ERRORS}
)
class CaseDetailView(PartnerView):
    def get(self, request: Request, reference: str) -> Response:
        case = _visible_case(self, reference)
        history = list(api_case_history(case))
        self.log(AccessLog.Action.VIEW, [case.pk])
        data = PartnerCaseDetailSerializer(case, context={"history": history}).data
        return Response(data, headers={"ETag": etag(case.version)})


@extend_schema(
    tags=["cases"],
    summary="Report a forward move of a case shared with update scope",
    description=(
        "Needs a token with update scope and a share with update scope. Send `If-Match` with the case's "
        "ETag (its version) and an `Idempotency-Key`: a retry with the same key and body returns the first "
        "response; the same key with another body is refused with 422."
    ),
    parameters=[
        OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
        OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True),
    ],
    request=StatusChangeInputSerializer,
    responses={
        201: StatusChangeResultSerializer,
        403: OpenApiResponse(ErrorSerializer, description="Token or share scope too small"),
        412: OpenApiResponse(ErrorSerializer, description="Stale If-Match"),
        422: OpenApiResponse(ErrorSerializer, description="Move refused, or key reused with another body"),
        428: OpenApiResponse(ErrorSerializer, description="If-Match or Idempotency-Key missing"),
        **ERRORS,
    },
)
class StatusChangeCreateView(PartnerView):
    def post(self, request: Request, reference: str) -> Response:
        case = _visible_case(self, reference)
        if self.token.scope != ShareScope.UPDATE:
            raise Problem(403, code="token_scope", message="This token can only read.")
        if getattr(case, "access", "owner") in (ShareScope.READ, ShareScope.ANSWER):
            raise Problem(403, code="share_scope", message="This case is shared with you for reading only.")
        key = preconditions.idempotency_key(request)
        version, raw_if_match = preconditions.if_match_version(request)
        preconditions.json_object(request)
        fingerprint = preconditions.fingerprint(request, raw_if_match)
        serializer = StatusChangeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return preconditions.run_once(
            organisation_id=self.token.organisation_id,
            key=key,
            fingerprint=fingerprint,
            write=lambda: self._record(case, serializer.validated_data, version),
        )

    def _record(self, case: Case, data: dict[str, Any], version: int) -> Response:
        try:
            change = services.change_status(
                case=case,
                actor=token_actor(self.token),
                to_status=data["status"],
                occurred_on=data["occurred_on"],
                expected_version=version,
                via=cast(Organisation | None, data.get("via")),
                note=data.get("note", ""),
            )
        except services.StaleVersion as conflict:
            return error_response(
                412,
                code="stale_version",
                message=f"The case is at version {conflict.current_version}: {'; '.join(conflict.changes)}",
                headers={"ETag": etag(conflict.current_version)},
            )
        except services.NotPermitted as refusal:
            return error_response(403, code="not_permitted", message=str(refusal))
        except DjangoValidationError as invalid:
            fields = {
                ("status" if k == "to_status" else k): [str(m) for m in v] for k, v in invalid.message_dict.items()
            }
            return error_response(422, code="move_refused", message="The move breaks a rule.", fields=fields)
        case.refresh_from_db()
        self.log(AccessLog.Action.STATUS_CHANGE, [case.pk])
        body = {"change": PartnerStatusChangeSerializer(change).data, "case": PartnerCaseSerializer(case).data}
        headers = {"ETag": etag(change.version), "Location": f"/api/v1/cases/{case.reference}/"}
        return Response(body, status=201, headers=headers)


@extend_schema(
    tags=["reference"],
    summary="Intermediary organisations",
    responses={200: IntermediarySerializer(many=True), **ERRORS},
)
class IntermediaryListView(PartnerView, generics.ListAPIView[Organisation]):
    serializer_class = IntermediarySerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Organisation]:
        return intermediaries()
