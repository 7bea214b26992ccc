"""App configurations: the admin with the project's site, and third-party apps named in both languages."""

from typing import Any

from axes.apps import AppConfig as AxesAppConfig  # type: ignore[import-untyped, unused-ignore]
from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.apps import (  # type: ignore[import-untyped, unused-ignore]
    DefaultConfig as OTPStaticDefaultConfig,
)
from django_otp.plugins.otp_totp.apps import (  # type: ignore[import-untyped, unused-ignore]
    DefaultConfig as OTPTOTPDefaultConfig,
)


class AdminConfig(DjangoAdminConfig):
    # Every ``@admin.register`` in the project lands on this site, which asks for the second factor.
    default_site = "config.admin.SecureAdminSite"


class OTPStaticConfig(OTPStaticDefaultConfig):  # type: ignore[misc]
    """Backup codes (django-otp), named in the interface's languages."""

    verbose_name = _("Backup codes")

    def ready(self) -> None:
        super().ready()
        _name_model(self, "staticdevice", _("backup code list"), _("backup code lists"))
        _name_model(self, "statictoken", _("backup code"), _("backup codes"))


class OTPTOTPConfig(OTPTOTPDefaultConfig):  # type: ignore[misc]
    """Authenticator apps (django-otp), named in the interface's languages."""

    verbose_name = _("Authenticator apps")

    def ready(self) -> None:
        super().ready()
        _name_model(self, "totpdevice", _("authenticator app"), _("authenticator apps"))


class AxesConfig(AxesAppConfig):  # type: ignore[misc]
    """The sign-in lockout (django-axes), named in the interface's languages."""

    verbose_name = _("Sign-in lockout")

    def ready(self) -> None:
        super().ready()
        _name_model(self, "accessattempt", _("failed sign-in"), _("failed sign-ins"))
        _name_model(self, "accessfailurelog", _("failed sign-in record"), _("failed sign-in records"))
        _name_model(self, "accesslog", _("sign-in record"), _("sign-in records"))
        _name_model(self, "accessattemptexpiration", _("lockout expiry"), _("lockout expiries"))


def _name_model(config: AppConfig, model_name: str, singular: Any, plural: Any) -> None:
    # Third-party models carry English-only names; the admin shows these instead.
    try:
        model = config.get_model(model_name)
    except LookupError:
        return
    model._meta.verbose_name = singular
    model._meta.verbose_name_plural = plural
