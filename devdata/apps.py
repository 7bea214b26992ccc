from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DevdataConfig(AppConfig):
    """Synthetic demo and scale data, and their commands. No app of the register imports it."""

    name = "devdata"
    verbose_name = _("Synthetic data")
