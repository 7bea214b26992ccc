"""Forms of the list pages: input parsing only. The rules are applied by partners.lists.services."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.forms import ServiceErrorsForm
from accounts.models import Organisation, User
from casework.choices import OneQueryModelChoiceField
from casework.references import REFERENCE_RE, normalise_reference
from partners.lists import selectors
from partners.models import AnswerKind, CaseList, ListState

# References pasted from a spreadsheet or a message: separated by spaces, commas, semicolons or lines.
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_PASTED = 25_000


class NewListForm(ServiceErrorsForm):
    intermediary = OneQueryModelChoiceField(
        label=_("Intermediary"),
        queryset=selectors.list_intermediaries(),
        to_field_name="slug",
        empty_label=_("Choose an intermediary"),
    )
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For your organisation only; never a name, a phone number or a document number."),
    )


class ReferencesForm(ServiceErrorsForm):
    service_field_names = {"cases": "references"}

    references = forms.CharField(
        label=_("Case references"),
        max_length=MAX_PASTED * 13,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "characters"}),
        help_text=_("Paste references separated by spaces, commas or new lines, e.g. C-7K3M-Q9XR."),
    )

    def clean_references(self) -> list[str]:
        raw = self.cleaned_data["references"]
        found = [normalise_reference(part) for part in _SEPARATORS.split(raw) if part]
        bad = [part for part in found if not REFERENCE_RE.fullmatch(part)]
        if bad:
            raise forms.ValidationError(_("Not references: %(values)s.") % {"values": ", ".join(sorted(set(bad))[:20])})
        if not found:
            raise forms.ValidationError(_("Paste at least one reference."))
        return list(dict.fromkeys(found))


class SendForm(ServiceErrorsForm):
    sent_on = forms.DateField(
        label=_("Sent on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("The date the list went to the intermediary."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sent_on"].initial = timezone.localdate()


class AnswerForm(ServiceErrorsForm):
    answer = forms.ChoiceField(label=_("Answer"), choices=AnswerKind.choices)
    answered_on = forms.DateField(label=_("Date of the answer"), widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Never a name, a phone number or a document number."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["answered_on"].initial = timezone.localdate()


def target_choices(user: User) -> list[tuple[str, str]]:
    """Where ticked or matched cases may go: one of the organisation's drafts, or a new list for an intermediary."""
    drafts = CaseList.objects.filter(organisation_id=user.organisation_id, state=ListState.DRAFT).select_related(
        "intermediary"
    )
    choices = [
        (
            f"list-{draft.pk}",
            str(_("Draft list %(id)s for %(intermediary)s"))
            % {"id": draft.pk, "intermediary": draft.intermediary.display_name},
        )
        for draft in drafts.order_by("-id")
    ]
    choices += [
        (
            f"new-{organisation.slug}",
            str(_("A new list for %(intermediary)s")) % {"intermediary": organisation.display_name},
        )
        for organisation in selectors.list_intermediaries()
    ]
    return choices


class TargetForm(ServiceErrorsForm):
    target = forms.ChoiceField(label=_("Put them on"), choices=())

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["target"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = target_choices(user)
        self.user = user

    def chosen(self) -> tuple[CaseList | None, Organisation | None]:
        """The draft chosen, or the intermediary of a new list."""
        value: str = self.cleaned_data["target"]
        kind, _sep, key = value.partition("-")
        if kind == "list":
            return CaseList.objects.get(pk=int(key), organisation_id=self.user.organisation_id), None
        return None, Organisation.objects.get(slug=key, kind=Organisation.Kind.INTERMEDIARY)
