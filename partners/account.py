"""The signed-in person's own account: password, second factor, language.

Everything here concerns the user themselves; an organisation's admin manages
other people (partners.views), a superuser everyone (the admin).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_static.models import StaticToken  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped, unused-ignore]

from casework.views import confirmed, not_found
from partners.auth import (
    KEEP_SESSION_ATTRIBUTE,
    confirmed_totp_devices,
    mark_second_factor_passed,
    record_event,
    second_factor_required,
)
from partners.models import AuthEvent


def _remaining_backup_codes(user: Any) -> int:
    return int(StaticToken.objects.filter(device__user=user, device__confirmed=True).count())


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponseBase:
    user: Any = request.user
    context = {
        "nav": "account",
        "apps": confirmed_totp_devices(user),
        "backup_codes": _remaining_backup_codes(user),
        "second_factor_required": second_factor_required(user),
    }
    return render(request, "account/account.html", context)


class PasswordForm(PasswordChangeForm):
    """Django's form, with the browser told which fields are which (password managers fill them right)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].widget.attrs.update(autocomplete="current-password", autofocus=True)
        self.fields["new_password1"].widget.attrs["autocomplete"] = "new-password"
        self.fields["new_password2"].widget.attrs["autocomplete"] = "new-password"


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponseBase:
    user: Any = request.user
    form = PasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            record_event(AuthEvent.Kind.PASSWORD_CHANGED, request=request, user=user)
        # Other sessions of this user end (their password hash no longer matches); this one stays,
        # with the second factor it already passed.
        passed = request.session.get("second_factor_passed_for") == str(user.pk)
        update_session_auth_hash(request, user)
        if passed:
            mark_second_factor_passed(request.session, user)
        messages.success(request, _("Your password is changed. Other places where you were signed in are signed out."))
        return redirect("account")
    status = 400 if form.is_bound else 200
    return render(request, "account/password_change.html", {"nav": "account", "form": form}, status=status)


class RemoveAppForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
    )


@login_required
@require_POST
def remove_app(request: HttpRequest, device_id: int) -> HttpResponseBase:
    """Remove one's own authenticator app (a new phone): the password again, and backup codes must remain."""
    user: Any = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=True, pk=device_id).first()
    if device is None:
        return not_found(request)
    others = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
    if second_factor_required(user) and not others and not _remaining_backup_codes(user):
        messages.error(
            request,
            _("This app is your only second factor: make backup codes first, or ask your organisation's admin."),
        )
        return redirect("account")
    form = RemoveAppForm(request.POST if confirmed(request) else None)
    if not confirmed(request) or not form.is_valid() or not user.check_password(form.cleaned_data["password"]):
        if confirmed(request) and form.is_valid():
            form.add_error("password", _("That is not your password."))
        return render(
            request,
            "account/remove_app.html",
            {"nav": "account", "device": device, "form": form},
            status=400 if confirmed(request) else 200,
        )
    # Every other session of the user ends (partners.auth); this one, which just gave the password, stays.
    setattr(device, KEEP_SESSION_ATTRIBUTE, request.session.session_key)
    device.delete()
    record_event(AuthEvent.Kind.OTP_DEVICE_REMOVED, request=request, user=user)
    messages.success(request, _("The authenticator app is removed. Sign in with a backup code until you add another."))
    return redirect("account")
