"""The lists an intermediary was sent, and its answers (DESIGN.md section 12), for its API token.

An intermediary sees the lists sent to it while they are open: a draft, a
closed list or another intermediary's list does not exist for it (a 404,
never counted). The items show the allowlisted fields of the case, as the
case endpoints do, and every item shown is logged as a read.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from casework import services as case_services
from casework.models import AccessLog, Case
from casework.references import REFERENCE_RE, normalise_reference
from partners.api import preconditions
from partners.api.errors import error_response
from partners.api.preconditions import Problem
from partners.api.serializers import ErrorSerializer, PartnerCaseSerializer, partner_case_data
from partners.api.views import ERRORS, MAX_ID, PartnerView
from partners.lists import selectors, services
from partners.models import AnswerKind, CaseList, ListAnswer, ListItem

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class ListSerializer(serializers.Serializer[CaseList]):
    id = serializers.IntegerField()
    organisation = serializers.CharField(help_text="The sending organisation's slug.")
    intermediary = serializers.CharField()
    sent_on = serializers.DateField()
    state = serializers.ChoiceField(choices=["sent"])


def list_data(case_list: CaseList) -> dict[str, Any]:
    return {
        "id": case_list.pk,
        "organisation": case_list.organisation.slug,
        "intermediary": case_list.intermediary.slug,
        "sent_on": case_list.sent_on.isoformat() if case_list.sent_on else None,
        "state": case_list.state,
    }


class ListItemSerializer(serializers.Serializer[ListItem]):
    reference = serializers.CharField()
    latest_answer = serializers.ChoiceField(choices=AnswerKind.choices, allow_null=True)
    latest_answered_on = serializers.DateField(allow_null=True)
    case = PartnerCaseSerializer()


def item_data(item: ListItem) -> dict[str, Any]:
    return {
        "reference": item.case.reference,
        "latest_answer": item.latest_answer or None,
        "latest_answered_on": item.latest_answered_on.isoformat() if item.latest_answered_on else None,
        "case": partner_case_data(item.case),
    }


class ListItemPageSerializer(serializers.Serializer[dict[str, Any]]):
    next = serializers.URLField(allow_null=True)
    results = ListItemSerializer(many=True)


class ListDetailSerializer(ListSerializer):
    items = ListItemPageSerializer()


class AnswerInputSerializer(serializers.Serializer[dict[str, Any]]):
    answer = serializers.ChoiceField(choices=AnswerKind.values)
    answered_on = serializers.DateField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class AnswerSerializer(serializers.Serializer[ListAnswer]):
    answer = serializers.ChoiceField(choices=AnswerKind.values)
    answered_on = serializers.DateField()
    recorded_at = serializers.DateTimeField()
    status_change = serializers.CharField(
        allow_null=True, help_text="The status the answer moved the case to, if it moved it."
    )


class AnswerResultSerializer(serializers.Serializer[dict[str, Any]]):
    answer = AnswerSerializer()
    item = ListItemSerializer()


def _open_list(view: PartnerView, list_id: int) -> CaseList:
    if not 0 < list_id <= MAX_ID:
        raise Http404
    found = selectors.intermediary_lists(view.token.organisation_id).filter(pk=list_id).first()
    if found is None:
        raise Http404
    return found


def _cursor(request: Request) -> str | None:
    raw = request.query_params.get("cursor")
    if raw is None:
        return None
    try:
        reference = base64.urlsafe_b64decode(raw.encode()).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error):
        reference = ""
    if not REFERENCE_RE.fullmatch(reference):
        raise ValidationError({"cursor": ["The cursor is not valid: use the next link of a page."]})
    return reference


def _page_size(request: Request) -> int:
    try:
        size = int(request.query_params.get("page_size", PAGE_SIZE))
    except ValueError:
        size = 0
    if size < 1:
        raise ValidationError({"page_size": ["A whole number from 1 to 200."]})
    return min(size, MAX_PAGE_SIZE)


@extend_schema(
    tags=["lists"],
    summary="The open lists sent to your organisation",
    description="Lists an organisation sent you, while they are open. A closed list is no longer shown.",
    responses={200: ListSerializer(many=True), **ERRORS},
)
class ListListView(PartnerView):
    def get(self, request: Request) -> Response:
        lists = selectors.intermediary_lists(self.token.organisation_id).order_by("-sent_on", "-id")
        return Response([list_data(case_list) for case_list in lists])


@extend_schema(
    tags=["lists"],
    summary="One open list with its items and their latest answers (paged by reference)",
    parameters=[
        OpenApiParameter("cursor", OpenApiTypes.STR, description="From a page's next link."),
        OpenApiParameter("page_size", OpenApiTypes.INT, description="Items per page (default 50, at most 200)."),
        OpenApiParameter(
            "answer",
            OpenApiTypes.STR,
            enum=[*AnswerKind.values, "none"],
            description="Only items whose latest answer is this (none: not answered yet).",
        ),
    ],
    responses={200: ListDetailSerializer, **ERRORS},
)
class ListDetailView(PartnerView):
    def get(self, request: Request, list_id: int) -> Response:
        case_list = _open_list(self, list_id)
        size, after = _page_size(request), _cursor(request)
        wanted = request.query_params.get("answer")
        if wanted is not None and wanted not in {*AnswerKind.values, "none"}:
            raise ValidationError({"answer": ["Not an answer: " + ", ".join([*AnswerKind.values, "none"]) + "."]})
        items = selectors.intermediary_items(
            case_list, answer=None if wanted is None else ("" if wanted == "none" else wanted)
        ).select_related("case__institution", "case__organisation")
        if after is not None:
            items = items.filter(case__reference__gt=after)
        rows = list(items[: size + 1])
        page = rows[:size]
        next_link = None
        if len(rows) > size:
            cursor = base64.urlsafe_b64encode(page[-1].case.reference.encode()).decode()
            next_link = replace_query_param(request.build_absolute_uri(), "cursor", cursor)
        self.log(AccessLog.Action.LIST, [item.case_id for item in page])
        body = {**list_data(case_list), "items": {"next": next_link, "results": [item_data(i) for i in page]}}
        return Response(body)


@extend_schema(
    tags=["lists"],
    summary="Record an answer about one child on an open list",
    description=(
        "Needs a token with update scope. Send an `Idempotency-Key`: a retry with the same key and body returns "
        "the first response; the same key with another body is refused with 422. `located` and `returned` move "
        "the case (returned: repatriated via your organisation) unless it is already further."
    ),
    parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True)],
    request=AnswerInputSerializer,
    responses={
        201: AnswerResultSerializer,
        403: OpenApiResponse(ErrorSerializer, description="Token scope too small"),
        409: OpenApiResponse(ErrorSerializer, description="A request with this key is still in progress"),
        422: OpenApiResponse(ErrorSerializer, description="Answer refused, or key reused with another body"),
        428: OpenApiResponse(ErrorSerializer, description="Idempotency-Key missing"),
        **ERRORS,
    },
)
class AnswerCreateView(PartnerView):
    def post(self, request: Request, list_id: int, reference: str) -> Response:
        case_list = _open_list(self, list_id)
        reference = normalise_reference(reference)
        if not REFERENCE_RE.fullmatch(reference):
            raise Http404
        case = Case.objects.filter(reference=reference).first()
        if case is None or not selectors.intermediary_sees_item(case_list, case.pk):
            raise Http404
        key = preconditions.idempotency_key(request)
        preconditions.json_object(request)
        fingerprint = preconditions.fingerprint(request)
        serializer = AnswerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return preconditions.run_once(
            organisation_id=self.token.organisation_id,
            key=key,
            fingerprint=fingerprint,
            write=lambda: self._record(case_list, case, serializer.validated_data),
        )

    def _record(self, case_list: CaseList, case: Case, data: dict[str, Any]) -> Response:
        try:
            made = services.record_answer(
                case_list=case_list,
                case=case,
                answer=data["answer"],
                answered_on=data["answered_on"],
                note=data.get("note", ""),
                answerer=services.Answerer(token=self.token),
                request=self.request,
                door=AccessLog.Door.API,
            )
        except services.ListNotFound:
            raise Http404 from None
        except (PermissionDenied, case_services.NotPermitted) as refusal:
            raise Problem(403, code="not_permitted", message=str(refusal)) from None
        except DjangoValidationError as invalid:
            fields = {name: [str(m) for m in messages] for name, messages in invalid.message_dict.items()}
            return error_response(422, code="answer_refused", message="The answer breaks a rule.", fields=fields)
        item = ListItem.objects.select_related("case__institution", "case__organisation").get(pk=made.item_id)
        answer = {
            "answer": made.answer,
            "answered_on": made.answered_on.isoformat(),
            "recorded_at": made.recorded_at.isoformat(),
            "status_change": made.status_change.to_status if made.status_change else None,
        }
        return Response({"answer": answer, "item": item_data(item)}, status=201)
