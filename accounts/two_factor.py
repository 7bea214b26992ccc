"""The second factor: who must pass one, whether this session has, and the devices that give codes.

An authenticator app (TOTP) and one-time backup codes (django-otp). A session
passes the second factor once, when a code is accepted: the fact is kept in
the (server-side) session, so pages cost no extra query. Until then the
session reaches only the two-factor pages, sign-out and the language switch
(SecondFactorMiddleware). Whatever takes the second factor away ends the
user's sessions (accounts.sessions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp import DEVICE_ID_SESSION_KEY, verify_token  # type: ignore[import-untyped, unused-ignore]
from django_otp.plugins.otp_static.models import StaticToken  # type: ignore[import-untyped, unused-ignore]

from accounts import sealing
from accounts.events import record_event
from accounts.models import AuthenticatorApp, AuthEvent, BackupCodes
from accounts.permissions import second_factor_required
from config.security import is_public_path

# The user id whose second factor this session has passed.
SECOND_FACTOR_PASSED_KEY = "second_factor_passed_for"
# Set at sign-in for someone not required to use a second factor who has set one up anyway.
SECOND_FACTOR_EXPECTED_KEY = "second_factor_expected"
# Backup codes just made, shown once and then forgotten.
FRESH_BACKUP_CODES_KEY = "second_factor_fresh_codes"
# "<user id>:<code id>": the enrolment code this session typed, spent when the new app is confirmed.
ENROLMENT_CODE_SESSION_KEY = "second_factor_enrolment_code"


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


def pass_second_factor(request: HttpRequest, device: Any) -> None:
    # A new session key for the higher privilege, as at any sign-in.
    request.session.cycle_key()
    mark_second_factor_passed(request.session, request.user, device)
    record_event(AuthEvent.Kind.OTP_VERIFIED, request=request, user=request.user)


def confirmed_totp_devices(user: Any) -> list[Any]:
    return list(AuthenticatorApp.objects.devices_for_user(user, confirmed=True))


def confirmed_backup_devices(user: Any) -> list[Any]:
    return list(BackupCodes.objects.devices_for_user(user, confirmed=True).filter(token_set__isnull=False).distinct())


def remaining_backup_codes(user: Any) -> int:
    return int(StaticToken.objects.filter(device__user=user, device__confirmed=True).count())


def has_second_factor(user: Any) -> bool:
    return bool(confirmed_totp_devices(user) or confirmed_backup_devices(user))


@receiver(user_logged_in, dispatch_uid="accounts.two_factor.signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        # A password sign-in always starts again at the second factor.
        request.session.pop(SECOND_FACTOR_PASSED_KEY, None)
        request.session.pop(DEVICE_ID_SESSION_KEY, None)
        request.session.pop(SECOND_FACTOR_EXPECTED_KEY, None)
        request.session.pop(ENROLMENT_CODE_SESSION_KEY, None)
        if not second_factor_required(user) and has_second_factor(user):
            request.session[SECOND_FACTOR_EXPECTED_KEY] = True


def check_code(user: Any, token: str) -> tuple[Any, bool]:
    """The device that accepts the code, if any, and whether some device refused to check it for now (throttled)."""
    if token.isdigit() and len(token) == 6:
        devices = confirmed_totp_devices(user)
    else:
        devices = list(BackupCodes.objects.devices_for_user(user, confirmed=True))
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


def grouped(key: str) -> str:
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def new_backup_codes(user: Any, *, count: int | None = None) -> list[str]:
    """Replace the user's backup codes with new ones (OTP_BACKUP_CODES of them); the old ones stop working.

    Only keyed hashes are stored (accounts.sealing): the codes returned are shown once.
    """
    with transaction.atomic():
        device = BackupCodes.objects.filter(user=user).order_by("pk").first()
        if device is None:
            device = BackupCodes.objects.create(user=user, name=str(gettext_lazy("Backup codes")), confirmed=True)
        elif not device.confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        StaticToken.objects.filter(device=device).delete()
        codes = [StaticToken.random_token() for _index in range(count or settings.OTP_BACKUP_CODES)]
        StaticToken.objects.bulk_create(
            [StaticToken(device=device, token=sealing.code_digest(code, sealing.BACKUP_CODES)) for code in codes]
        )
    return codes


def new_authenticator_app(user: Any) -> Any:
    """An app not yet confirmed, with a fresh key (sealed when saved)."""
    return AuthenticatorApp.objects.create(user=user, name=str(gettext_lazy("Authenticator app")), confirmed=False)


class SecondFactorMiddleware:
    """Until a session has passed the second factor asked of it, it reaches only the two-factor
    pages, sign-out and the language switch. Costs no query: the session says it all."""

    # The partner API authenticates with bearer tokens, never with this session.
    OPEN_PREFIXES = ("/api/",)
    OPEN_URL_NAMES = ("two-factor-verify", "two-factor-setup", "two-factor-backup-codes", "logout", "set_language")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._open_paths: set[str] | None = None

    def _is_open(self, path: str) -> bool:
        if self._open_paths is None:
            self._open_paths = {reverse(name) for name in self.OPEN_URL_NAMES}
        static = "/" + settings.STATIC_URL.lstrip("/")
        return path in self._open_paths or path.startswith((*self.OPEN_PREFIXES, static)) or is_public_path(path)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._is_open(request.path_info) and second_factor_outstanding(request):
            target = reverse("two-factor-verify")
            if request.method == "GET":
                target = f"{target}?{urlencode({'next': request.get_full_path()})}"
            return redirect(target)
        return self.get_response(request)
