"""Forms of a caseworker's day: input parsing only; the rules are casework.followups'."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import ServiceErrorsForm
from accounts.models import User
from casework.choices import OneQueryModelChoiceField
from casework.forms import ISO_DATE
from casework.task_models import RULE_KINDS, TaskKind
from casework.work import assignable_people


def _person_label(user: User) -> str:
    return user.get_full_name() or user.get_username()


class TaskForm(ServiceErrorsForm):
    kind = forms.ChoiceField(label=_("Kind"), choices=TaskKind.choices, initial=TaskKind.OTHER)
    due_on = forms.DateField(label=_("Due on"), widget=forms.DateInput(format=ISO_DATE, attrs={"type": "date"}))
    assigned_to = OneQueryModelChoiceField(
        label=_("For"), queryset=User.objects.none(), required=False, empty_label=_("nobody yet")
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("What to do. No names, phone numbers, addresses or document numbers."),
    )

    def __init__(self, *args: Any, organisation_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["assigned_to"]
        field.queryset = assignable_people(organisation_id)
        field.label_from_instance = _person_label


class CompleteTaskForm(ServiceErrorsForm):
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=2000)


class ReassignForm(ServiceErrorsForm):
    from_user = OneQueryModelChoiceField(label=_("Open cases of"), queryset=User.objects.none())
    to_user = OneQueryModelChoiceField(label=_("Give them to"), queryset=User.objects.none())

    def __init__(self, *args: Any, organisation_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Inactive members may still hold cases: they are the ones most often handed over.
        holders: Any = self.fields["from_user"]
        holders.queryset = User.objects.filter(organisation_id=organisation_id).order_by("username")
        holders.label_from_instance = _person_label
        takers: Any = self.fields["to_user"]
        takers.queryset = assignable_people(organisation_id)
        takers.label_from_instance = _person_label


class NewRuleForm(ServiceErrorsForm):
    # Both empty: no rule is added.
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("", "—"), *((k, TaskKind(k).label) for k in RULE_KINDS)], required=False
    )
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=3650, required=False)
