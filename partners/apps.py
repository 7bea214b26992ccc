from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = _("Organisations and users")

    def ready(self) -> None:
        # Connects the sign-in signal that starts the session clock.
        import config.security  # noqa: F401
