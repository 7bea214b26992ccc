"""The sign-in pages (password, then the second factor), and each person's account page.

The flow: the password at /accounts/login/ (the lockout is checked first), then,
for whoever must use a second factor, a code from an authenticator app or a
backup code at /accounts/two-factor/ (or, with no device yet, its set-up).
The account page changes the password, removes an authenticator app, makes
new backup codes and sets the language: everything there concerns the user
themselves. A forgotten password is reset by e-mail (Django's views; the
rules are accounts.password_reset's).
"""

from __future__ import annotations

import math
from base64 import b32encode
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import (
    LoginView,
    PasswordResetCompleteView,
    PasswordResetConfirmView,
    PasswordResetDoneView,
    PasswordResetView,
)
from django.db import transaction
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import verify_token  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken  # type: ignore[import-untyped, unused-ignore]

from accounts import enrolment, password_reset
from accounts.events import record_event
from accounts.forms import (
    CodeForm,
    EnrolmentCodeForm,
    NewPasswordForm,
    NoticeChoicesForm,
    PasswordForm,
    RemoveAppForm,
    ResetRequestForm,
    SetupCodeForm,
)
from accounts.lockout import count_failed_code, end_locked_session, is_locked
from accounts.models import AuthenticatorApp, AuthEvent, User
from accounts.permissions import second_factor_required
from accounts.requests import safe_next_url
from accounts.sessions import KEEP_SESSION_ATTRIBUTE
from accounts.two_factor import (
    ENROLMENT_CODE_SESSION_KEY,
    FRESH_BACKUP_CODES_KEY,
    SECOND_FACTOR_PASSED_KEY,
    check_code,
    confirmed_backup_devices,
    confirmed_totp_devices,
    grouped,
    has_second_factor,
    mark_second_factor_passed,
    new_authenticator_app,
    new_backup_codes,
    pass_second_factor,
    qr_code_svg,
    remaining_backup_codes,
    second_factor_outstanding,
    second_factor_passed,
)


def _confirmed(request: HttpRequest) -> bool:
    return request.POST.get("confirmed") == "1"


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


class SignInView(LoginView):
    """Django's sign-in, then on to the second factor when one is asked of this user."""

    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        url = super().get_success_url()
        if second_factor_outstanding(self.request):
            return _with_next("two-factor-verify", url)
        return url

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["password_reset_enabled"] = password_reset.enabled()
        return context


def _refuse_code(request: HttpRequest, form: CodeForm, throttled: bool) -> HttpResponse | None:
    if count_failed_code(request, request.user):
        return end_locked_session(request)
    if throttled:
        form.add_error("token", _("Too many wrong codes. Wait a minute, then try again."))
    else:
        form.add_error("token", _("That code is not right, or has already been used. Try again."))
    return None


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    next_url = safe_next_url(request)
    if not second_factor_outstanding(request):
        return redirect(next_url)
    user: Any = request.user
    has_app = bool(confirmed_totp_devices(user))
    if not has_app and not confirmed_backup_devices(user):
        return redirect(_with_next("two-factor-setup", next_url))
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if is_locked(request, user.get_username()):
            return end_locked_session(request)
        if form.is_valid():
            device, throttled = check_code(user, form.cleaned_data["token"])
            if device is not None:
                pass_second_factor(request, device)
                if isinstance(device, StaticDevice):
                    remaining = StaticToken.objects.filter(device=device).count()
                    messages.warning(
                        request,
                        format_html(
                            '{} <a href="{}">{}</a>',
                            ngettext(
                                "You used a backup code. %(count)s is left: make new ones when few remain.",
                                "You used a backup code. %(count)s are left: make new ones when few remain.",
                                remaining,
                            )
                            % {"count": remaining},
                            f"{reverse('two-factor-backup-codes')}?{urlencode({'next': reverse('account')})}",
                            _("Make new backup codes"),
                        ),
                    )
                return redirect(next_url)
            refused = _refuse_code(request, form, throttled)
            if refused is not None:
                return refused
    return render(request, "two_factor/verify.html", {"form": form, "next": next_url, "has_app": has_app})


def _enrolment(request: HttpRequest, user: Any, next_url: str) -> tuple[int | None, HttpResponse | None]:
    """A first second factor needs an enrolment code (accounts.enrolment); one already passed needs none.

    Returns the accepted code's id (None when no code is needed), or the page to show instead.
    """
    if second_factor_passed(request):
        return None, None
    accepted = str(request.session.get(ENROLMENT_CODE_SESSION_KEY, ""))
    owner, _sep, code_id = accepted.partition(":")
    if owner == str(user.pk) and code_id.isdigit() and enrolment.still_live(user, int(code_id)):
        return int(code_id), None
    request.session.pop(ENROLMENT_CODE_SESSION_KEY, None)
    form = EnrolmentCodeForm(request.POST if "enrolment_code" in request.POST else None)
    if form.is_bound:
        if is_locked(request, user.get_username()):
            return None, end_locked_session(request)
        if form.is_valid():
            code = enrolment.live_code(user, form.cleaned_data["enrolment_code"])
            if code is not None:
                request.session[ENROLMENT_CODE_SESSION_KEY] = f"{user.pk}:{code.pk}"
                return None, redirect(_with_next("two-factor-setup", next_url))
            if count_failed_code(request, user, AuthEvent.Kind.ENROLMENT_FAILED):
                return None, end_locked_session(request)
            form.add_error(
                "enrolment_code",
                _("That enrolment code is not right, has expired, or was replaced by a newer one."),
            )
    context = {
        "form": form,
        "next": next_url,
        "required": second_factor_required(user),
        "outstanding": second_factor_outstanding(request),
    }
    return None, render(request, "two_factor/enrolment_code.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    next_url = safe_next_url(request)
    if confirmed_totp_devices(user):
        if second_factor_outstanding(request):
            return redirect(_with_next("two-factor-verify", next_url))
        messages.info(
            request,
            _("Two-factor sign-in is already set up. To replace the app, remove it on your account page first."),
        )
        return redirect(_with_next("two-factor-backup-codes", next_url))
    if second_factor_outstanding(request) and confirmed_backup_devices(user):
        # Someone who still has backup codes proves it with one before adding an app.
        return redirect(_with_next("two-factor-verify", next_url))
    code_id, page = _enrolment(request, user, next_url)
    if page is not None:
        return page
    device = AuthenticatorApp.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = new_authenticator_app(user)
    form = SetupCodeForm(request.POST or None)
    if request.method == "POST":
        if is_locked(request, user.get_username()):
            return end_locked_session(request)
        if form.is_valid():
            token = form.cleaned_data["token"]
            allowed, _details = device.verify_is_allowed()
            is_totp = token.isdigit() and len(token) == 6
            verified = verify_token(user, device.persistent_id, token) if allowed and is_totp else None
            if verified is not None:
                with transaction.atomic():
                    if code_id is not None and not enrolment.use_code(user, code_id):
                        # Spent or withdrawn since it was typed (another tab, a new code issued).
                        transaction.set_rollback(True)
                        request.session.pop(ENROLMENT_CODE_SESSION_KEY, None)
                        messages.error(request, _("That enrolment code is no longer valid. Type the newest one."))
                        return redirect(_with_next("two-factor-setup", next_url))
                    AuthenticatorApp.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
                    AuthenticatorApp.objects.filter(pk=device.pk).update(confirmed=True)
                    device.confirmed = True
                    codes = new_backup_codes(user)
                    record_event(AuthEvent.Kind.OTP_SET_UP, request=request, user=user)
                request.session.pop(ENROLMENT_CODE_SESSION_KEY, None)
                pass_second_factor(request, device)
                request.session[FRESH_BACKUP_CODES_KEY] = codes
                messages.success(request, _("Two-factor sign-in is set up."))
                return redirect(_with_next("two-factor-backup-codes", next_url))
            device.refresh_from_db()
            refused = _refuse_code(request, form, not allowed)
            if refused is not None:
                return refused
    key = b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": next_url,
        "qr_code": qr_code_svg(device.config_url),
        "key": grouped(key),
        "required": second_factor_required(user),
        "outstanding": second_factor_outstanding(request),
    }
    return render(request, "two_factor/setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    next_url = safe_next_url(request)
    if second_factor_outstanding(request):
        return redirect(_with_next("two-factor-verify", next_url))
    if not has_second_factor(user):
        return redirect(_with_next("two-factor-setup", next_url))
    if request.method == "POST":
        request.session[FRESH_BACKUP_CODES_KEY] = new_backup_codes(user)
        record_event(AuthEvent.Kind.BACKUP_CODES_MADE, request=request, user=user)
        return HttpResponseRedirect(_with_next("two-factor-backup-codes", next_url))
    codes = request.session.pop(FRESH_BACKUP_CODES_KEY, None)
    context = {"codes": codes, "remaining": remaining_backup_codes(user), "next": next_url}
    return render(request, "two_factor/backup_codes.html", context)


# --- the account page ----------------------------------------------------------------------


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponseBase:
    user: Any = request.user
    context = {
        "nav": "account",
        "apps": confirmed_totp_devices(user),
        "backup_codes": remaining_backup_codes(user),
        "second_factor_required": second_factor_required(user),
        "notice_form": NoticeChoicesForm(instance=user),
    }
    return render(request, "account/account.html", context)


@login_required
@require_POST
def notice_choices(request: HttpRequest) -> HttpResponseBase:
    """Which notices the user gets in the register, and whether the daily e-mail."""
    user: Any = request.user
    form = NoticeChoicesForm(request.POST, instance=user)
    if form.is_valid():
        form.save()
        messages.success(request, _("Your choices of notices are saved."))
    return redirect("account")


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
        passed = request.session.get(SECOND_FACTOR_PASSED_KEY) == str(user.pk)
        update_session_auth_hash(request, user)
        if passed:
            mark_second_factor_passed(request.session, user)
        messages.success(request, _("Your password is changed. Other places where you were signed in are signed out."))
        return redirect("account")
    status = 400 if form.is_bound else 200
    return render(request, "account/password_change.html", {"nav": "account", "form": form}, status=status)


@login_required
@require_POST
def remove_app(request: HttpRequest, device_id: int) -> HttpResponseBase:
    """Remove one's own authenticator app (a new phone): the password again, and backup codes must remain."""
    user: Any = request.user
    device = AuthenticatorApp.objects.filter(user=user, confirmed=True, pk=device_id).first()
    if device is None:
        raise Http404
    others = AuthenticatorApp.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
    if second_factor_required(user) and not others and not remaining_backup_codes(user):
        messages.error(
            request,
            _("This app is your only second factor: make backup codes first, or ask your organisation's admin."),
        )
        return redirect("account")
    form = RemoveAppForm(request.POST if _confirmed(request) else None)
    if not _confirmed(request) or not form.is_valid() or not user.check_password(form.cleaned_data["password"]):
        if _confirmed(request) and form.is_valid():
            form.add_error("password", _("That is not your password."))
        return render(
            request,
            "account/remove_app.html",
            {"nav": "account", "device": device, "form": form},
            status=400 if _confirmed(request) else 200,
        )
    # Every other session of the user ends (accounts.sessions); this one, which just gave the password, stays.
    setattr(device, KEEP_SESSION_ATTRIBUTE, request.session.session_key)
    device.delete()
    record_event(AuthEvent.Kind.OTP_DEVICE_REMOVED, request=request, user=user)
    messages.success(request, _("The authenticator app is removed. Sign in with a backup code until you add another."))
    return redirect("account")


# --- a forgotten password, reset by e-mail ---------------------------------------------------


class _WhereMailIsSent:
    """Only where mail can be sent (accounts.password_reset.enabled); elsewhere these pages do not exist."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not password_reset.enabled():
            raise Http404
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]


class ResetRequestView(_WhereMailIsSent, PasswordResetView):
    form_class = ResetRequestForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form: Form) -> HttpResponse:
        try:
            password_reset.request_reset(email=form.cleaned_data["email"], request=self.request)
        except password_reset.TooManyRequests as refusal:
            response = render(
                self.request,
                "registration/password_reset_throttled.html",
                {"minutes": max(1, math.ceil(refusal.retry_after / 60))},
                status=429,
            )
            response["Retry-After"] = str(refusal.retry_after)
            return response
        # The same answer whether or not an account has the address.
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: Form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ResetSentView(_WhereMailIsSent, PasswordResetDoneView):
    template_name = "registration/password_reset_done.html"
    extra_context = {"minutes": password_reset.link_minutes}


class ResetConfirmView(_WhereMailIsSent, PasswordResetConfirmView):
    """Django's: the link's token moves into the session and out of the address bar, then the new password."""

    form_class = NewPasswordForm
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            password_reset.completed(user=form.user, request=self.request)
        return response

    def form_invalid(self, form: SetPasswordForm[User]) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ResetDoneView(_WhereMailIsSent, PasswordResetCompleteView):
    template_name = "registration/password_reset_complete.html"
