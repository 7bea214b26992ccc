"""Forms of the organisation pages: input parsing only. The rules are applied by partners.services."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from partners.models import ShareScope


class _ServiceErrors(forms.Form):
    # The services name some fields differently from the forms.
    service_field_names: dict[str, str] = {}

    def add_service_errors(self, error: ValidationError) -> None:
        """Show the service's refusals next to the fields they concern."""
        for field_name, messages in error.message_dict.items():
            target = self.service_field_names.get(field_name, field_name)
            for message in messages:
                self.add_error(target if target in self.fields else None, message)


class TokenForm(_ServiceErrors):
    service_field_names = {"expires": "expires_in_days"}

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Who or what uses the token, e.g. “Case sync of the partner's system”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        label=_("Scope"),
        choices=ShareScope.choices,
        initial=ShareScope.READ,
        widget=forms.RadioSelect,
        help_text=_("Read and update also lets the token report forward moves of cases shared for update."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"),
        required=False,
        min_value=1,
        max_value=3650,
        initial=365,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("Between 1 and 3650 days. Leave it empty for a token that does not expire."),
    )


class WebhookForm(_ServiceErrors):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://partner.example/register-events", "spellcheck": "false"}),
        help_text=_("Events are sent here by POST, signed with the secret shown once after you add the URL."),
    )
