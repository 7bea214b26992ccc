"""Forms: input parsing only. The rules are applied by casework.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from casework import services
from casework.models import Case, Status, StatusChange
from casework.references import normalise_reference
from partners.models import Organisation


class StatusChangeForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"))
    occurred_on = forms.DateField(
        label=_("Date it happened"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The date in the world, not today's date if it happened earlier."),
    )
    via = forms.ModelChoiceField(
        label=_("Via intermediary"),
        queryset=Organisation.objects.filter(kind=Organisation.Kind.INTERMEDIARY).order_by("name"),
        required=False,
        to_field_name="slug",
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
        to_status.choices = [(status, Status(status).label) for status in targets]
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
