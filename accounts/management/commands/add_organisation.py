from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from accounts import services
from accounts.management.commands._errors import command_error
from accounts.models import Organisation


class Command(BaseCommand):
    help = "Create an organisation (an NGO, an intermediary, an authority or an international organisation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="short unique name, e.g. ngo-a (lower case, digits, hyphens)")
        parser.add_argument("name", help="the organisation's full name")
        parser.add_argument("--kind", required=True, choices=Organisation.Kind.values, help="the kind of organisation")
        parser.add_argument(
            "--host",
            action="store_true",
            help="it hosts the register: its users see exact figures of every organisation's cases (one at most)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = services.create_organisation(
                slug=options["slug"], name=options["name"], kind=options["kind"], is_host=options["host"]
            )
        except ValidationError as error:
            raise command_error(error) from None
        host = ", hosting the register" if organisation.is_host else ""
        self.stdout.write(self.style.SUCCESS(f"Created organisation {organisation.slug} ({organisation.kind}{host})."))
