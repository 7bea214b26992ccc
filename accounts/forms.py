"""Forms of the sign-in and account pages, and the form helper every app's forms share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from accounts.models import Role
from accounts.models import User as UserModel

if TYPE_CHECKING:
    from accounts.models import User

    _SetPasswordForm = SetPasswordForm[User]
else:
    _SetPasswordForm = SetPasswordForm  # not subscriptable at run time


class ServiceErrorsForm(forms.Form):
    """A form that shows a service's refusals next to the fields they concern."""

    # The services name some fields differently from the forms.
    service_field_names: dict[str, str] = {}

    def add_service_errors(self, error: ValidationError) -> None:
        for field_name, messages in error.message_dict.items():
            target = self.service_field_names.get(field_name, field_name)
            for message in messages:
                self.add_error(target if target in self.fields else None, message)


class CodeForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code"),
        help_text=gettext_lazy("The 6-digit code your authenticator app shows now, or one of your backup codes."),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        # People copy codes with spaces or dashes; backup codes are lower case.
        token: str = self.cleaned_data["token"]
        return "".join(ch for ch in token if ch.isalnum()).lower()


class SetupCodeForm(CodeForm):
    token = forms.CharField(
        label=gettext_lazy("Code from the app"),
        help_text=gettext_lazy("After adding the account, type the 6-digit code the app shows."),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false", "autofocus": True}
        ),
    )


class EnrolmentCodeForm(forms.Form):
    enrolment_code = forms.CharField(
        label=gettext_lazy("Enrolment code"),
        help_text=gettext_lazy("The code your organisation's admin gave you, for example ABCD-EFGH-JKMN."),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false", "autofocus": True}
        ),
    )


class PasswordForm(PasswordChangeForm):
    """Django's form, with the browser told which fields are which (password managers fill them right)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].widget.attrs.update(autocomplete="current-password", autofocus=True)
        self.fields["new_password1"].widget.attrs["autocomplete"] = "new-password"
        self.fields["new_password2"].widget.attrs["autocomplete"] = "new-password"


class RemoveAppForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
    )


class ResetRequestForm(PasswordResetForm):
    """Django's form for the address; accounts.password_reset does the rest (never this form's ``save``)."""

    email = forms.EmailField(
        label=gettext_lazy("Your e-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class NewPasswordForm(_SetPasswordForm):
    """Django's form for the new password (its rules: AUTH_PASSWORD_VALIDATORS), labelled for this register."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].widget.attrs.update(autocomplete="new-password", autofocus=True)
        self.fields["new_password2"].widget.attrs["autocomplete"] = "new-password"


class NoticeChoicesForm(forms.ModelForm["User"]):
    """What a user chooses to receive: three switches, nothing else of the account."""

    class Meta:
        model = UserModel
        fields = ["notify_status_changes", "notify_assignments", "daily_digest"]


class InviteForm(ServiceErrorsForm):
    username = forms.CharField(
        label=gettext_lazy("Username"),
        max_length=150,
        help_text=gettext_lazy("What they sign in with. Letters, digits and @ . + - _ only."),
    )
    email = forms.EmailField(
        label=gettext_lazy("E-mail address"), help_text=gettext_lazy("The invitation's link goes there.")
    )
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices, initial=Role.CASEWORKER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)
