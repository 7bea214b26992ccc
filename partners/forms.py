"""Forms of the organisation pages: input parsing only. The rules are applied by partners.services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.forms import ServiceErrorsForm
from accounts.models import Organisation, TokenScope, User
from casework.choices import OneQueryModelChoiceField
from partners import selectors
from partners.models import SHAREABLE_SCOPES, ShareScope

ISO_DATE = "%Y-%m-%d"


class TokenForm(ServiceErrorsForm):
    service_field_names = {"expires": "expires_in_days"}

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Who or what uses the token, e.g. “Case sync of the partner's system”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        label=_("Scope"),
        choices=TokenScope.choices,
        initial=TokenScope.READ,
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


class WebhookForm(ServiceErrorsForm):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://partner.example/register-events", "spellcheck": "false"}),
        help_text=_("Events are sent here by POST, signed with the secret shown once after you add the URL."),
    )


# A share's end date, at the latest (longer is what an empty date is for).
MAX_SHARE_DAYS = 20 * 365


class ShareForm(ServiceErrorsForm):
    """The terms of a share; partners.services.share_cases applies the rules."""

    service_field_names = {"expires": "expires_on"}

    partner = OneQueryModelChoiceField(
        label=_("Partner organisation"),
        queryset=Organisation.objects.none(),  # whom the reader may share with: set in __init__
        to_field_name="slug",
        empty_label=_("Choose a partner"),
    )
    scope = forms.ChoiceField(
        label=_("Access"),
        choices=[(value, label) for value, label in ShareScope.choices if value in SHAREABLE_SCOPES],
        initial=ShareScope.READ,
        widget=forms.RadioSelect,
        help_text=_("Read and update lets the partner report forward moves of the case through the API."),
    )
    expires_on = forms.DateField(
        label=_("Shared until (optional)"),
        required=False,
        widget=forms.DateInput(format=ISO_DATE, attrs={"type": "date"}),
        help_text=_("The share ends after this day. Leave it empty to share until you revoke it."),
    )

    def __init__(self, data: Any = None, *, user: User, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        partner: Any = self.fields["partner"]
        partner.queryset = selectors.share_partners(user.organisation_id)
        partner.label_from_instance = lambda organisation: (
            f"{organisation.display_name} ({organisation.get_kind_display()})"
        )
        self.fields["expires_on"].widget.attrs["min"] = timezone.localdate().isoformat()

    def clean_expires_on(self) -> dt.date | None:
        day: dt.date | None = self.cleaned_data.get("expires_on")
        if day is not None and day > timezone.localdate() + dt.timedelta(days=MAX_SHARE_DAYS):
            raise ValidationError(
                _("Choose an end date within %(years)s years, or leave it empty for a share without end."),
                params={"years": MAX_SHARE_DAYS // 365},
            )
        return day

    def expires_at(self) -> dt.datetime | None:
        """The end of the chosen day, in the server's time zone."""
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))
