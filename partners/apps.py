from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = _("Partners: shares, webhooks")

    def ready(self) -> None:
        # Partners' sections on casework's pages (sharing), and the receiver of casework's status events.
        from partners import announcements, sharing
        from partners.lists import sections as list_sections

        sharing.register_sections()
        list_sections.register_sections()
        # The figures per intermediary, in every snapshot's exact figures, and the cells a release protects
        # of them (reports cannot import partners).
        from partners.lists.figures import list_figures, list_release_series
        from reports.figures import add_extra_figures

        add_extra_figures("lists", list_figures, release_series=list_release_series)
        announcements.connect()
