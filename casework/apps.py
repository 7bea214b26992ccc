from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CaseworkConfig(AppConfig):
    name = "casework"
    verbose_name = _("Casework")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from casework import privileges, work_views

        work_views.register_sections()

        # Once per migrate, after the last app (this one is among the last installed).
        post_migrate.connect(privileges.after_migrate, sender=self, dispatch_uid="casework.privileges")
