"""Signing in: the second factor, the lockout, and the record of sign-ins and refusals.

The flow: the password at /accounts/login/ (the lockout is checked first), then, for
whoever must use a second factor, a code from an authenticator app or a backup code at
/accounts/two-factor/ (or, with no device yet, its set-up). Until the code is accepted
the session reaches nothing but those pages and sign-out (config.security.SecondFactorMiddleware).

A session passes the second factor once, when the code is checked: the fact is kept in
the (server-side) session, so that pages cost no extra query. Whatever takes the second
factor away, a device removed or the account deactivated, ends the user's sessions.
"""

from __future__ import annotations

import logging
import math
from base64 import b32encode
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

from axes.backends import AxesStandaloneBackend  # type: ignore[import-untyped, unused-ignore]
from axes.handlers.proxy import AxesProxyHandler  # type: ignore[import-untyped, unused-ignore]
from axes.helpers import get_cool_off  # type: ignore[import-untyped, unused-ignore]
from axes.signals import user_locked_out  # type: ignore[import-untyped, unused-ignore]
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.views import LoginView
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods
from django_otp import DEVICE_ID_SESSION_KEY, verify_token  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped, unused-ignore]

from casework.audit import client_address
from partners.models import AuthEvent, Role, User

logger = logging.getLogger(__name__)

# The user id whose second factor this session has passed.
SECOND_FACTOR_PASSED_KEY = "second_factor_passed_for"
# Set at sign-in for someone not required to use a second factor who has set one up anyway.
SECOND_FACTOR_EXPECTED_KEY = "second_factor_expected"
# Backup codes just made, shown once and then forgotten.
FRESH_BACKUP_CODES_KEY = "second_factor_fresh_codes"

ROLES_WITH_SECOND_FACTOR = {Role.SUPERVISOR, Role.ORG_ADMIN}
DB_SESSION_ENGINES = {"django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"}


# --- who must pass a second factor ------------------------------------------------------


def second_factor_required(user: Any) -> bool:
    """Superusers, staff (the admin), supervisors and organisation admins; everyone with OTP_REQUIRED_FOR_ALL."""
    if user is None or not user.is_authenticated:
        return False
    return bool(
        settings.OTP_REQUIRED_FOR_ALL
        or user.is_superuser
        or user.is_staff
        or getattr(user, "role", None) in ROLES_WITH_SECOND_FACTOR
    )


def second_factor_passed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    if user is None or session is None or not user.is_authenticated:
        return False
    return bool(session.get(SECOND_FACTOR_PASSED_KEY) == str(user.pk))


def second_factor_outstanding(request: HttpRequest) -> bool:
    """Signed in with a password, and a second factor is asked of this session but not yet given."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or second_factor_passed(request):
        return False
    return second_factor_required(user) or bool(request.session.get(SECOND_FACTOR_EXPECTED_KEY))


def mark_second_factor_passed(session: Any, user: Any, device: Any = None) -> None:
    session[SECOND_FACTOR_PASSED_KEY] = str(user.pk)
    session.pop(SECOND_FACTOR_EXPECTED_KEY, None)
    if device is not None:
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id


def _pass_second_factor(request: HttpRequest, device: Any) -> None:
    # A new session key for the higher privilege, as at any sign-in.
    request.session.cycle_key()
    mark_second_factor_passed(request.session, request.user, device)
    record_event(AuthEvent.Kind.OTP_VERIFIED, request=request, user=request.user)


def confirmed_totp_devices(user: Any) -> list[Any]:
    return list(TOTPDevice.objects.devices_for_user(user, confirmed=True))


def confirmed_backup_devices(user: Any) -> list[Any]:
    return list(StaticDevice.objects.devices_for_user(user, confirmed=True).filter(token_set__isnull=False).distinct())


def has_second_factor(user: Any) -> bool:
    return bool(confirmed_totp_devices(user) or confirmed_backup_devices(user))


# --- the record of sign-ins and refusals ----------------------------------------------------


def client_ip(request: HttpRequest | Any) -> str | None:
    """The address django-axes locks: REMOTE_ADDR, never a forwarded header a client can write."""
    return client_address(request)


def record_event(
    kind: str, *, request: HttpRequest | Any | None, user: Any = None, username: str = "", path: str = ""
) -> AuthEvent:
    if not isinstance(user, User) or not user.is_authenticated:
        user = None
    if user is not None:
        username = user.get_username()
    if not path and request is not None:
        path = getattr(request, "path", "") or ""
    event = AuthEvent.objects.create(
        at=timezone.now(),
        kind=kind,
        user=user,
        username=(username or "")[:150],
        organisation_id=getattr(user, "organisation_id", None),
        ip_address=client_address(request),
        path=path[:200],
    )
    level = logging.INFO if kind in {AuthEvent.Kind.SIGN_IN, AuthEvent.Kind.SIGN_OUT} else logging.WARNING
    logger.log(level, "auth %s user=%r ip=%s path=%s", kind, event.username, event.ip_address, event.path)
    return event


@receiver(user_logged_in, dispatch_uid="partners.auth.signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        # A password sign-in always starts again at the second factor.
        request.session.pop(SECOND_FACTOR_PASSED_KEY, None)
        request.session.pop(DEVICE_ID_SESSION_KEY, None)
        request.session.pop(SECOND_FACTOR_EXPECTED_KEY, None)
        if not second_factor_required(user) and has_second_factor(user):
            request.session[SECOND_FACTOR_EXPECTED_KEY] = True
    record_event(AuthEvent.Kind.SIGN_IN, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="partners.auth.sign_in_failed")
def _sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username") or "")[:150]
    user = User.objects.filter(username=username).first() if username else None
    record_event(AuthEvent.Kind.SIGN_IN_FAILED, request=request, user=user, username=username)


@receiver(user_logged_out, dispatch_uid="partners.auth.signed_out")
def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    record_event(AuthEvent.Kind.SIGN_OUT, request=request, user=user)


@receiver(user_locked_out, dispatch_uid="partners.auth.locked_out")
def _locked_out(
    sender: Any, request: HttpRequest | None, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    user = User.objects.filter(username=username).first() if username else None
    record_event(AuthEvent.Kind.LOCKED_OUT, request=request, user=user, username=username or "")


# Set on a device being deleted by its owner: the owner's current session survives the removal.
KEEP_SESSION_ATTRIBUTE = "_keep_session_key"


def _device_removed(sender: Any, instance: Any, **kwargs: Any) -> None:
    # A removed device (a lost phone, reset by an admin) must not stay trusted in open sessions.
    if instance.confirmed:
        end_sessions(instance.user_id, keep=getattr(instance, KEEP_SESSION_ATTRIBUTE, None))


post_delete.connect(_device_removed, sender=TOTPDevice, dispatch_uid="partners.auth.totp_removed")
post_delete.connect(_device_removed, sender=StaticDevice, dispatch_uid="partners.auth.static_removed")


def end_sessions(*users: Any, keep: str | None = None) -> int:
    """End every session of the users (deactivation, a removed device), in one pass. Returns how many ended.

    ``keep``: a session key to spare (the session of a user removing their own device).
    """
    if settings.SESSION_ENGINE not in DB_SESSION_ENGINES or not users:
        return 0  # the users' sessions cannot be listed; ModelBackend still refuses an inactive user
    user_ids = {str(getattr(user, "pk", user)) for user in users}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ended = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.session_key != keep and session.get_decoded().get(SESSION_KEY) in user_ids
    ]
    for key in ended:
        store(session_key=key).delete()
    return len(ended)


# --- lockout (django-axes) ----------------------------------------------------------------


class LockoutBackend(AxesStandaloneBackend):  # type: ignore[misc]
    """Refuses a sign-in, whatever the password, while the account or the address is locked.

    Signs no one in by itself: ModelBackend, after it, checks the password.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            # Only code (the test client, a shell) authenticates without a request: there is
            # no address to lock, and no door open to a guesser.
            return None
        super().authenticate(request, username=username, password=password, **kwargs)
        return None


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(1, math.ceil(seconds / 60)) if seconds else None},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def _locked(request: HttpRequest, username: str) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def _count_failed_code(request: HttpRequest, user: Any) -> bool:
    """A wrong second-factor code counts as a failed sign-in. Returns whether that locked the account."""
    record_event(AuthEvent.Kind.OTP_FAILED, request=request, user=user)
    AxesProxyHandler.user_login_failed(sender=__name__, credentials={"username": user.get_username()}, request=request)
    return bool(getattr(request, "axes_locked_out", False))


def _end_locked_session(request: HttpRequest) -> HttpResponse:
    logout(request)
    return lockout_response(request)


# --- pages --------------------------------------------------------------------------------


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return str(settings.LOGIN_REDIRECT_URL)


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


def check_code(user: Any, token: str) -> tuple[Any, bool]:
    """The device that accepts the code, if any, and whether some device refused to check it for now (throttled)."""
    if token.isdigit() and len(token) == 6:
        devices = confirmed_totp_devices(user)
    else:
        devices = list(StaticDevice.objects.devices_for_user(user, confirmed=True))
    throttled = False
    for device in devices:
        allowed, _details = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        # Locks the device row: two requests cannot both use one code.
        verified = verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified, False
    return None, throttled


def _refuse_code(request: HttpRequest, form: CodeForm, throttled: bool) -> HttpResponse | None:
    if _count_failed_code(request, request.user):
        return _end_locked_session(request)
    if throttled:
        form.add_error("token", _("Too many wrong codes. Wait a minute, then try again."))
    else:
        form.add_error("token", _("That code is not right, or has already been used. Try again."))
    return None


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    next_url = _next_url(request)
    if not second_factor_outstanding(request):
        return redirect(next_url)
    user: Any = request.user
    has_app = bool(confirmed_totp_devices(user))
    if not has_app and not confirmed_backup_devices(user):
        return redirect(_with_next("two-factor-setup", next_url))
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if _locked(request, user.get_username()):
            return _end_locked_session(request)
        if form.is_valid():
            device, throttled = check_code(user, form.cleaned_data["token"])
            if device is not None:
                _pass_second_factor(request, device)
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


def qr_code_svg(data: str) -> SafeString:
    """An SVG QR code, drawn here: no image from elsewhere, no inline style (strict CSP)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=15, border=4)
    svg = image.to_string(encoding="unicode")
    if isinstance(svg, bytes):
        svg = svg.decode()
    label = escape(_("QR code to scan with your authenticator app"))
    svg = svg.replace("<svg ", f'<svg class="qr-code" role="img" aria-label="{label}" focusable="false" ', 1)
    # Markup made by qrcode from our own otpauth URL, with the label escaped above.
    return mark_safe(str(svg))  # noqa: S308  # nosec B308


def _grouped(key: str) -> str:
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def new_backup_codes(user: Any, *, count: int | None = None) -> list[str]:
    """Replace the user's backup codes with new ones (OTP_BACKUP_CODES of them); the old ones stop working."""
    with transaction.atomic():
        device = StaticDevice.objects.filter(user=user).order_by("pk").first()
        if device is None:
            device = StaticDevice.objects.create(user=user, name=str(gettext_lazy("Backup codes")), confirmed=True)
        elif not device.confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        StaticToken.objects.filter(device=device).delete()
        codes = [StaticToken.random_token() for _index in range(count or settings.OTP_BACKUP_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    next_url = _next_url(request)
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
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=str(gettext_lazy("Authenticator app")), confirmed=False)
    form = SetupCodeForm(request.POST or None)
    if request.method == "POST":
        if _locked(request, user.get_username()):
            return _end_locked_session(request)
        if form.is_valid():
            token = form.cleaned_data["token"]
            allowed, _details = device.verify_is_allowed()
            is_totp = token.isdigit() and len(token) == 6
            verified = verify_token(user, device.persistent_id, token) if allowed and is_totp else None
            if verified is not None:
                TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
                TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
                device.confirmed = True
                codes = new_backup_codes(user)
                _pass_second_factor(request, device)
                record_event(AuthEvent.Kind.OTP_SET_UP, request=request, user=user)
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
        "key": _grouped(key),
        "required": second_factor_required(user),
        "outstanding": second_factor_outstanding(request),
    }
    return render(request, "two_factor/setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    next_url = _next_url(request)
    if second_factor_outstanding(request):
        return redirect(_with_next("two-factor-verify", next_url))
    if not has_second_factor(user):
        return redirect(_with_next("two-factor-setup", next_url))
    if request.method == "POST":
        request.session[FRESH_BACKUP_CODES_KEY] = new_backup_codes(user)
        record_event(AuthEvent.Kind.BACKUP_CODES_MADE, request=request, user=user)
        return HttpResponseRedirect(_with_next("two-factor-backup-codes", next_url))
    codes = request.session.pop(FRESH_BACKUP_CODES_KEY, None)
    remaining = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    context = {"codes": codes, "remaining": remaining, "next": next_url}
    return render(request, "two_factor/backup_codes.html", context)
