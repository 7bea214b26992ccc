"""Forms: input parsing only. The rules are applied by casework.services."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts.forms import ServiceErrorsForm
from accounts.models import Organisation, User
from accounts.permissions import CASE_EDITOR_ROLES
from casework import identifying, selectors, services
from casework.choices import OneQueryModelChoiceField
from casework.collation import alphabetical_choices
from casework.models import (
    CLOSED_STATUSES,
    RISK_FLAGS,
    VIA_STATUSES,
    Case,
    CaseIdentifier,
    DisplacedPrecision,
    Institution,
    Oblast,
    Placement,
    Sex,
    Source,
    Status,
    StatusChange,
)
from casework.references import REFERENCE_RE, normalise_reference

ISO_DATE = "%Y-%m-%d"
CLOSING_KINDS = frozenset({services.MoveKind.DUPLICATE, services.MoveKind.WITHDRAW})


class StatusChangeForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"))
    occurred_on = forms.DateField(
        label=_("Date it happened"),
        # A date input takes ISO dates whatever the language's own date format.
        widget=forms.DateInput(format=ISO_DATE, attrs={"type": "date"}),
        help_text=_("The date in the world, not today's date if it happened earlier."),
    )
    via = OneQueryModelChoiceField(
        label=_("Via intermediary"),
        queryset=Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).order_by("name"),
        required=False,
        to_field_name="slug",
        empty_label=_("None"),
        help_text=_("For a return requested, repatriation or reunification negotiated by an intermediary."),
    )
    duplicate_of = forms.CharField(
        label=_("Duplicate of (reference)"),
        required=False,
        max_length=20,
        help_text=_("For a duplicate: the reference of the case that remains, e.g. C-7K3M-Q9XR."),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required for corrections and withdrawals. No names, dates of birth, phones or document numbers."),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, data: Any = None, *, case: Case, actor: services.Actor, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.case = case
        self.actor = actor
        targets = services.allowed_targets(case.status, can_correct=actor.can_correct)
        to_status: Any = self.fields["to_status"]
        choices: list[tuple[Any, Any]] = [(status, Status(status).label) for status in targets]
        if actor.can_correct:
            # Group the moves so that a correction is never picked by mistake for a step forward.
            kinds = {status: services.classify_move(case.status, status) for status in targets}
            groups = [
                (_("Forward"), [c for c in choices if kinds[c[0]] is services.MoveKind.FORWARD]),
                (_("Correction (back)"), [c for c in choices if kinds[c[0]] is services.MoveKind.CORRECTION]),
                (_("Close the case as"), [c for c in choices if kinds[c[0]] in CLOSING_KINDS]),
            ]
            grouped: list[tuple[Any, Any]] = [(label, group) for label, group in groups if group]
            choices = grouped
        # No move is preselected: recording a change takes a deliberate choice.
        self.targets = targets
        to_status.choices = [("", _("Choose the new status")), *choices] if targets else []
        # Lets the page's script show the intermediary field only where it applies.
        to_status.widget.attrs["data-via-statuses"] = " ".join(sorted(VIA_STATUSES))
        self.fields["version"].initial = case.version
        self.fields["occurred_on"].initial = timezone.localdate()
        if not actor.can_correct:
            # Caseworkers cannot mark duplicates: the field would only confuse.
            del self.fields["duplicate_of"]

    def clean_duplicate_of(self) -> Case | None:
        value = self.cleaned_data.get("duplicate_of") or ""
        if not value.strip():
            return None
        reference = normalise_reference(value)
        survivor = Case.objects.filter(reference=reference, organisation_id=self.case.organisation_id).first()
        if survivor is None:
            raise ValidationError(
                _("No case of your organisation has the reference %(ref)s."), params={"ref": reference}
            )
        return survivor

    def save(self) -> StatusChange | None:
        """Apply the move through the service; on a refused move, attach the errors and return None.

        A stale version is not a form error: ``StaleVersion`` propagates so the
        caller can show what changed.
        """
        data = self.cleaned_data
        try:
            return services.change_status(
                case=self.case,
                actor=self.actor,
                to_status=data["to_status"],
                occurred_on=data["occurred_on"],
                expected_version=data["version"],
                via=data.get("via"),
                note=data.get("note") or "",
                duplicate_of=data.get("duplicate_of"),
            )
        except services.NotPermitted as refusal:
            self.add_error(None, str(refusal))
        except ValidationError as error:
            for field_name, messages in error.message_dict.items():
                target = field_name if field_name in self.fields else None
                for message in messages:
                    self.add_error(target, message)
        return None


# --- the case list's filters -------------------------------------------------

SORT_CHOICES: list[tuple[str, Any]] = [
    ("-reported", _("Newest report first")),
    ("reported", _("Oldest report first")),
    ("-changed", _("Latest status change first")),
    ("changed", _("Longest without a status change first")),
    ("status", _("Status, along the path")),
    ("-status", _("Status, from the end of the path")),
    ("reference", _("Reference, A to Z")),
    ("-reference", _("Reference, Z to A")),
]
assert {key for key, _label in SORT_CHOICES} == set(selectors.CASE_SORTS)


def _risk_label(flag: str) -> Any:
    field = Case._meta.get_field(f"risk_{flag}")
    return capfirst(getattr(field, "verbose_name", flag))


RISK_CHOICES: list[tuple[str, Any]] = [(flag, _risk_label(flag)) for flag in RISK_FLAGS]


class CaseFilter(django_filters.FilterSet):
    """Parses the case list's query string; an invalid value is a form error, never a 500."""

    q = django_filters.CharFilter(label=_("Reference"), method="filter_reference", max_length=20)
    status = django_filters.ChoiceFilter(label=_("Status"), choices=Status.choices, empty_label=_("Any status"))
    oblast = django_filters.ChoiceFilter(
        label=_("Oblast"), choices=alphabetical_choices(Oblast.choices), empty_label=_("Any oblast")
    )
    placement = django_filters.ChoiceFilter(
        label=_("Placement"), choices=Placement.choices, empty_label=_("Any placement")
    )
    institution = django_filters.ModelChoiceFilter(
        label=_("Institution"),
        queryset=Institution.objects.order_by("name", "code"),
        to_field_name="code",
        empty_label=_("Any institution"),
    )
    risk = django_filters.ChoiceFilter(
        label=_("Risk flag"), choices=RISK_CHOICES, method="filter_risk", empty_label=_("Any")
    )
    mine = django_filters.BooleanFilter(label=_("Assigned to me"), method="filter_mine", widget=forms.CheckboxInput)
    idle = django_filters.BooleanFilter(
        label=_("No status change in 90 days"), method="filter_idle", widget=forms.CheckboxInput
    )
    sort = django_filters.ChoiceFilter(label=_("Sort by"), choices=SORT_CHOICES, method="keep", empty_label=None)

    class Meta:
        model = Case
        fields: list[str] = []

    def filter_reference(self, queryset: QuerySet[Case], name: str, value: str) -> QuerySet[Case]:
        typed = normalise_reference(value)
        if REFERENCE_RE.match(typed):
            return queryset.filter(reference=typed)
        if typed.startswith("C-"):
            return queryset.filter(reference__startswith=typed)
        # A fragment of the body: the alphabet has no O, I or L, so read them as digits.
        return queryset.filter(reference__contains=typed.translate(str.maketrans("OIL", "011")))

    def filter_risk(self, queryset: QuerySet[Case], name: str, value: str) -> QuerySet[Case]:
        return queryset.filter(**{f"risk_{value}": True})

    def filter_mine(self, queryset: QuerySet[Case], name: str, value: bool | None) -> QuerySet[Case]:
        if not value or self.request is None:
            return queryset
        return queryset.filter(assigned_to_id=self.request.user.pk)

    def filter_idle(self, queryset: QuerySet[Case], name: str, value: bool | None) -> QuerySet[Case]:
        if not value:
            return queryset
        since = selectors.idle_since(timezone.now())
        return queryset.exclude(status__in=CLOSED_STATUSES).filter(selectors.idle_q(since=since))

    def keep(self, queryset: QuerySet[Case], name: str, value: str) -> QuerySet[Case]:
        return queryset  # the order is applied last, in filter_queryset

    @property
    def sort_key(self) -> str:
        data = getattr(self.form, "cleaned_data", {})
        return data.get("sort") or selectors.DEFAULT_CASE_SORT

    def filter_queryset(self, queryset: QuerySet[Case]) -> QuerySet[Case]:
        filtered: QuerySet[Case] = super().filter_queryset(queryset)
        return selectors.sort_cases(filtered, self.sort_key)

    @property
    def active_count(self) -> int:
        """How many filters narrow the list (the sort is not one)."""
        data = getattr(self.form, "cleaned_data", {})
        return sum(1 for name, value in data.items() if name != "sort" and value not in (None, "", False))

    def active_filters(self) -> list[tuple[str, str]]:
        """The filters that narrow the list, as (label, value) in the reader's language."""
        data = getattr(self.form, "cleaned_data", {})
        described: list[tuple[str, str]] = []
        for name, field in self.form.fields.items():
            value = data.get(name)
            if name == "sort" or value in (None, "", False):
                continue
            if isinstance(value, bool):
                shown = str(_("yes"))
            elif isinstance(value, Institution):
                shown = value.display_name
            elif isinstance(field, forms.ChoiceField):
                labels: dict[Any, Any] = dict(field.choices)  # type: ignore[arg-type]
                shown = str(labels.get(value, value))
            else:
                shown = str(value)
            described.append((str(field.label), shown))
        return described


# --- creating and editing a case ---------------------------------------------


class NoEchoTextInput(forms.TextInput):
    """Never renders a submitted value back into the page: identifiers are hashed, never shown."""

    def format_value(self, value: Any) -> str | None:
        return None


def _detail_input(**attrs: str) -> NoEchoTextInput:
    return NoEchoTextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "words", **attrs})


# Why a date of birth was refused (casework.identifying.NotADate.reason); never the value typed.
BIRTH_DATE_REFUSALS: dict[str, Any] = {
    "shape": _("Give the date of birth as YYYY-MM-DD, or YYYY-MM when only the month is known."),
    "month": _("There is no such month: check the date of birth."),
    "day": _("There is no such day in that month: check the date of birth."),
    "future": _("The date of birth is in the future."),
    "early": _("The date of birth is before %(year)s: a child of the register is younger."),
}


class CaseForm(ServiceErrorsForm):
    """Every field of a case record (DESIGN.md section 2). The rules are checked by the services."""

    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, initial=Sex.UNKNOWN, widget=forms.RadioSelect)
    birth_year = forms.IntegerField(
        label=_("Birth year"),
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
        help_text=_("The year only, if known. Never the full date of birth."),
    )
    oblast = forms.ChoiceField(
        label=_("Oblast of origin"), choices=alphabetical_choices(Oblast.choices, first=("", _("Choose an oblast")))
    )
    reported_on = forms.DateField(
        label=_("Report received on"),
        widget=forms.DateInput(format=ISO_DATE, attrs={"type": "date"}),
    )
    displaced_on = forms.DateField(
        label=_("Deported on"),
        required=False,
        widget=forms.DateInput(format=ISO_DATE, attrs={"type": "date"}),
        help_text=_("If only the month is known, pick any day of it and choose “Month only” below."),
    )
    displaced_precision = forms.ChoiceField(
        label=_("The deportation date is"),
        required=False,
        choices=[(DisplacedPrecision.DAY, _("The exact day")), (DisplacedPrecision.MONTH, _("Month only"))],
        widget=forms.RadioSelect,
    )
    source = forms.ChoiceField(
        label=_("Reported by"), required=False, choices=[("", _("Not recorded")), *Source.choices]
    )
    placement = forms.ChoiceField(
        label=_("Placement"),
        required=False,
        choices=[("", _("Not recorded")), *Placement.choices],
        help_text=_("Where the child is held, if known."),
    )
    institution = OneQueryModelChoiceField(
        label=_("Institution"),
        queryset=Institution.objects.order_by("name", "code"),
        to_field_name="code",
        required=False,
        empty_label=_("None or not known"),
    )
    assigned_to = OneQueryModelChoiceField(
        label=_("Assigned caseworker"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody"),
    )
    risk_adoption = forms.BooleanField(label=_risk_label("adoption"), required=False)
    risk_citizenship = forms.BooleanField(label=_risk_label("citizenship"), required=False)
    risk_military = forms.BooleanField(label=_risk_label("military"), required=False)
    risk_medical = forms.BooleanField(label=_risk_label("medical"), required=False)
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_(
            "Internal. Never names, dates of birth, addresses, phone numbers, e-mail addresses or document numbers."
        ),
    )
    # Identifiers that help find duplicates: hashed by the service, never stored, never shown again.
    identifier_register_number = forms.CharField(
        label=_("Register number"),
        required=False,
        max_length=100,
        widget=NoEchoTextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text=_("A birth-certificate, passport or register number, if known."),
    )
    # Identifying details that find the same child in several organisations: encoded by their receiver
    # (casework.identifying), never stored, never shown again.
    given_name = forms.CharField(
        label=_("Given name"), required=False, max_length=identifying.MAX_LENGTH, widget=_detail_input()
    )
    family_name = forms.CharField(
        label=_("Family name"), required=False, max_length=identifying.MAX_LENGTH, widget=_detail_input()
    )
    patronymic = forms.CharField(
        label=_("Patronymic"), required=False, max_length=identifying.MAX_LENGTH, widget=_detail_input()
    )
    birth_date = forms.CharField(
        label=_("Date of birth"),
        required=False,
        max_length=20,
        widget=_detail_input(inputmode="numeric"),
        help_text=_("YYYY-MM-DD, or YYYY-MM when only the month is known (15.03.2012 and 03.2012 also work)."),
    )
    birth_place = forms.CharField(
        label=_("Place of birth"), required=False, max_length=identifying.MAX_LENGTH, widget=_detail_input()
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    RISK_FIELDS = tuple(f"risk_{flag}" for flag in RISK_FLAGS)
    DETAIL_FIELDS = identifying.DETAIL_FIELDS
    IDENTIFIER_FIELDS = ("identifier_register_number", *DETAIL_FIELDS)

    def __init__(self, data: Any = None, *, actor: services.Actor, case: Case | None = None, **kwargs: Any) -> None:
        if case is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_for(case)
        super().__init__(data, **kwargs)
        self.case = case
        self.actor = actor
        assignees = Q(organisation_id=actor.organisation_id, is_active=True, role__in=CASE_EDITOR_ROLES)
        if case is not None and case.assigned_to_id is not None:
            # Keep the current assignee choosable even if no longer a caseworker, or saving would unassign.
            assignees |= Q(pk=case.assigned_to_id)
        assigned_to: Any = self.fields["assigned_to"]
        assigned_to.queryset = User.objects.filter(assignees).order_by("username")
        assigned_to.label_from_instance = lambda user: user.get_full_name() or user.get_username()
        if case is None:
            del self.fields["version"]
            self.fields["reported_on"].initial = timezone.localdate()
            if actor.user is not None and actor.role in CASE_EDITOR_ROLES:
                self.fields["assigned_to"].initial = actor.user.pk
        else:
            self.fields["version"].required = True

    @staticmethod
    def initial_for(case: Case) -> dict[str, Any]:
        initial: dict[str, Any] = {name: getattr(case, name) for name in services.EDITABLE_FIELDS}
        initial["institution"] = case.institution.code if case.institution else None
        initial["assigned_to"] = case.assigned_to_id
        initial["version"] = case.version
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("displaced_on") is None:
            data["displaced_precision"] = ""
        elif not data.get("displaced_precision"):
            data["displaced_precision"] = DisplacedPrecision.DAY
        if self.errors:
            self._preview_service_errors(data)
        return data

    def _preview_service_errors(self, data: dict[str, Any]) -> None:
        """When some fields cannot be read, still show the service's other refusals now, not one round later.

        The service checks everything again when the form is saved; this only spares a second round trip.
        """
        base = {name: getattr(self.case, name) for name in services.EDITABLE_FIELDS} if self.case else {}
        values = {**base, **{name: data[name] for name in services.EDITABLE_FIELDS if name in data}}
        values.setdefault("sex", Sex.UNKNOWN)
        for name, messages in services.validate_case_values(values, today=timezone.localdate()).items():
            if name in self.fields and name not in self.errors and name in data:
                for message in messages:
                    self.add_error(name, message)

    def _clean_name(self, name: str) -> str:
        value: str = " ".join((self.cleaned_data.get(name) or "").split())
        # Never repeat the value in a message: it would be shown, and could be logged.
        if value and not any(char.isalpha() for char in value):
            raise ValidationError(_("Letters only: this does not look like a name."), code="not_a_name")
        return value

    def clean_given_name(self) -> str:
        return self._clean_name("given_name")

    def clean_family_name(self) -> str:
        return self._clean_name("family_name")

    def clean_patronymic(self) -> str:
        return self._clean_name("patronymic")

    def clean_birth_place(self) -> str:
        return self._clean_name("birth_place")

    def clean_birth_date(self) -> identifying.PartialDate | None:
        value = (self.cleaned_data.get("birth_date") or "").strip()
        if not value:
            return None
        try:
            return identifying.parse_birth_date(value, today=timezone.localdate())
        except identifying.NotADate as refusal:
            raise ValidationError(
                BIRTH_DATE_REFUSALS[refusal.reason],
                code=f"birth_date_{refusal.reason}",
                params={"year": identifying.EARLIEST_BIRTH_YEAR},
            ) from None

    def details(self) -> identifying.IdentifyingDetails:
        """The identifying details typed, to be encoded and dropped (``casework.identifying``)."""
        data = self.cleaned_data
        return identifying.IdentifyingDetails(
            given_name=data.get("given_name") or "",
            family_name=data.get("family_name") or "",
            patronymic=data.get("patronymic") or "",
            birth_date=data.get("birth_date"),
            birth_place=data.get("birth_place") or "",
        )

    @property
    def identifiers_were_typed(self) -> bool:
        """Whether the submission carried identifiers: they are not shown again and must be retyped."""
        return self.is_bound and any((self.data.get(name) or "").strip() for name in self.IDENTIFIER_FIELDS)

    def case_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        values = {name: data.get(name) for name in services.EDITABLE_FIELDS}
        for name in ("source", "placement", "displaced_precision", "notes"):
            values[name] = values[name] or ""
        for name in self.RISK_FIELDS:
            values[name] = bool(values[name])
        return values

    def identifiers(self) -> list[tuple[str, str]]:
        data = self.cleaned_data
        found: list[tuple[str, str]] = []
        if (data.get("identifier_register_number") or "").strip():
            found.append((CaseIdentifier.Kind.REGISTER_NUMBER, data["identifier_register_number"]))
        return found

    def fieldsets(self) -> list[tuple[Any, list[forms.BoundField]]]:
        """The fields grouped for the page, in reading order."""
        groups: list[tuple[Any, tuple[str, ...]]] = [
            (_("The child"), ("sex", "birth_year", "oblast")),
            (_("The report"), ("reported_on", "source", "displaced_on", "displaced_precision")),
            (_("Where the child is held"), ("placement", "institution")),
            (_("Risk flags"), self.RISK_FIELDS),
            (_("Follow-up"), ("assigned_to", "notes")),
        ]
        return [(title, [self[name] for name in names]) for title, names in groups]
