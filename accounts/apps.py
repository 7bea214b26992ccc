from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Organisations and users")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connect the receivers: sign-in records, the second factor's reset at sign-in,
        # the session clock, and the end of sessions when a device is removed.
        from accounts import events, sessions, two_factor  # noqa: F401
