"""What partners may see: an allowlist of fields (DESIGN.md section 6).

Never notes, caseworker names, internal ids or linkage hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Organisation
from casework.models import (
    RISK_FLAGS,
    Case,
    DisplacedPrecision,
    Institution,
    Oblast,
    Placement,
    Sex,
    Status,
    StatusChange,
    age_band_at_report,
)
from casework.services import PARTNER_TARGETS
from partners.selectors import intermediaries

_DATETIME = serializers.DateTimeField()


def _displaced_on(displaced_on: Any, precision: str) -> str | None:
    """``YYYY-MM`` when only the month is known, ``YYYY-MM-DD`` otherwise."""
    if displaced_on is None:
        return None
    if precision == DisplacedPrecision.MONTH:
        return str(displaced_on.strftime("%Y-%m"))
    return str(displaced_on.isoformat())


# What a partner is shown of a case, as QuerySet.values() names it (api_cases' annotation "access" included):
# a page of the API's case list is read as these values, not as cases with their institution and owner
# (building 100 of each cost three times the rest of the page; issue 16).
PARTNER_CASE_VALUES: tuple[str, ...] = (
    "id",
    "reference",
    "organisation__slug",
    "access",
    "status",
    "sex",
    "birth_year",
    "oblast",
    "reported_on",
    "displaced_on",
    "displaced_precision",
    "placement",
    "institution__code",
    "institution__name",
    "institution__region",
    "institution__kind",
    *(f"risk_{name}" for name in RISK_FLAGS),
    "version",
    "last_change_at",
    "updated_at",
)


def partner_case_values(case: Case) -> dict[str, Any]:
    """A case as PARTNER_CASE_VALUES names its values."""
    institution = case.institution
    return {
        "id": case.pk,
        "reference": case.reference,
        "organisation__slug": case.organisation.slug,
        "access": getattr(case, "access", "owner"),
        "status": case.status,
        "sex": case.sex,
        "birth_year": case.birth_year,
        "oblast": case.oblast,
        "reported_on": case.reported_on,
        "displaced_on": case.displaced_on,
        "displaced_precision": case.displaced_precision,
        "placement": case.placement,
        "institution__code": institution.code if institution is not None else None,
        "institution__name": institution.name if institution is not None else None,
        "institution__region": institution.region if institution is not None else None,
        "institution__kind": institution.kind if institution is not None else None,
        **{f"risk_{name}": getattr(case, f"risk_{name}") for name in RISK_FLAGS},
        "version": case.version,
        "last_change_at": case.last_change_at,
        "updated_at": case.updated_at,
    }


def partner_case_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """The allowlisted fields of a case given as PARTNER_CASE_VALUES, built directly: a page of 100 costs a
    millisecond, not ten. PartnerCaseSerializer declares the same fields (for the schema)."""
    reported_on = values["reported_on"]
    return {
        "reference": values["reference"],
        "owner": values["organisation__slug"],
        "access": str(values["access"] or "owner"),
        "status": values["status"],
        "sex": values["sex"],
        "birth_year": values["birth_year"],
        "age_band": age_band_at_report(birth_year=values["birth_year"], reported_on=reported_on),
        "oblast": values["oblast"],
        "reported_on": reported_on.isoformat(),
        "displaced_on": _displaced_on(values["displaced_on"], values["displaced_precision"]),
        "placement": values["placement"],
        "institution": None
        if values["institution__code"] is None
        else {
            "code": values["institution__code"],
            "name": values["institution__name"],
            "region": values["institution__region"],
            "kind": values["institution__kind"],
        },
        "risk_flags": [name for name in RISK_FLAGS if values[f"risk_{name}"]],
        "version": values["version"],
        "last_change_at": _DATETIME.to_representation(values["last_change_at"]) if values["last_change_at"] else None,
        "updated_at": _DATETIME.to_representation(values["updated_at"]),
    }


def partner_case_data(case: Case) -> dict[str, Any]:
    """The allowlisted fields of a case (partner_case_row of the case's values)."""
    return partner_case_row(partner_case_values(case))


class InstitutionSerializer(serializers.ModelSerializer[Institution]):
    class Meta:
        model = Institution
        fields = ["code", "name", "region", "kind"]


class PartnerCaseSerializer(serializers.ModelSerializer[Case]):
    owner: serializers.SlugRelatedField[Organisation] = serializers.SlugRelatedField(
        source="organisation", slug_field="slug", read_only=True
    )
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    sex = serializers.ChoiceField(choices=Sex.choices, read_only=True)
    oblast = serializers.ChoiceField(choices=Oblast.choices, read_only=True)
    placement = serializers.ChoiceField(choices=[("", ""), *Placement.choices], read_only=True)
    age_band = serializers.SerializerMethodField()
    displaced_on = serializers.SerializerMethodField()
    institution = InstitutionSerializer(read_only=True, allow_null=True)
    risk_flags = serializers.ListField(child=serializers.CharField(), read_only=True)
    access = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
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
        ]
        read_only_fields = fields

    def to_representation(self, instance: Case) -> dict[str, Any]:
        return partner_case_data(instance)

    @extend_schema_field(serializers.ChoiceField(choices=["0-4", "5-9", "10-13", "14-17", "18+", "unknown"]))
    def get_age_band(self, case: Case) -> str:
        return case.age_band

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_displaced_on(self, case: Case) -> str | None:
        """``YYYY-MM`` when only the month is known, ``YYYY-MM-DD`` otherwise."""
        return _displaced_on(case.displaced_on, case.displaced_precision)

    @extend_schema_field(serializers.ChoiceField(choices=["owner", "read", "update", "answer"]))
    def get_access(self, case: Case) -> str:
        return str(getattr(case, "access", "owner"))


class PartnerStatusChangeSerializer(serializers.ModelSerializer[StatusChange]):
    from_status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    to_status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    via: serializers.SlugRelatedField[Organisation] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = StatusChange
        fields = ["from_status", "to_status", "occurred_on", "recorded_at", "via", "is_correction", "version"]
        read_only_fields = fields


class PartnerCaseDetailSerializer(PartnerCaseSerializer):
    history = serializers.SerializerMethodField()

    class Meta(PartnerCaseSerializer.Meta):
        fields = [*PartnerCaseSerializer.Meta.fields, "history"]
        read_only_fields = fields

    def to_representation(self, instance: Case) -> dict[str, Any]:
        return {**partner_case_data(instance), "history": self.get_history(instance)}

    @extend_schema_field(PartnerStatusChangeSerializer(many=True))
    def get_history(self, case: Case) -> list[dict[str, Any]]:
        changes = self.context.get("history", [])
        return list(PartnerStatusChangeSerializer(changes, many=True).data)


class StatusChangeInputSerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.ChoiceField(choices=sorted(PARTNER_TARGETS))
    occurred_on = serializers.DateField()
    via = serializers.SlugRelatedField(slug_field="slug", queryset=intermediaries(), required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class StatusChangeResultSerializer(serializers.Serializer[dict[str, Any]]):
    change = PartnerStatusChangeSerializer()
    case = PartnerCaseSerializer()


class IntermediarySerializer(serializers.ModelSerializer[Organisation]):
    class Meta:
        model = Organisation
        fields = ["slug", "name"]


class ErrorBodySerializer(serializers.Serializer[dict[str, Any]]):
    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "fields" (the inputs at fault) would clash with Serializer.fields as an attribute.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
        return fields


class ErrorSerializer(serializers.Serializer[dict[str, Any]]):
    error = ErrorBodySerializer()
