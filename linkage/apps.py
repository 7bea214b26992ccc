from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LinkageConfig(AppConfig):
    name = "linkage"
    verbose_name = _("The same child in several organisations")

    def ready(self) -> None:
        # casework hands identifying details to its receivers and shows other apps' sections on its pages,
        # without importing this app (the arrows between apps point one way).
        from django.db.models.signals import post_migrate

        from casework import identifying, sections
        from linkage import privileges, selectors, services

        identifying.add_receiver(
            name="linkage", on_case=services.receive_case_details, on_import=services.receive_import_details
        )
        sections.add_to_case_page(name="linkage", template="linkage/_case_links.html", context=selectors.case_section)
        # After casework's grants (casework comes first in INSTALLED_APPS): the decision trail is append-only.
        post_migrate.connect(privileges.after_migrate, sender=self, dispatch_uid="linkage.privileges")
