"""Django's admin app, with the project's admin site as the default ``admin.site``."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    # Every ``@admin.register`` in the project lands on this site, which asks for the second factor.
    default_site = "config.admin.SecureAdminSite"
