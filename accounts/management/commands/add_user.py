from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.management.commands._errors import command_error
from accounts.models import Organisation, Role


class Command(BaseCommand):
    help = (
        "Create a user in an organisation with a role. Without --password the account "
        "cannot sign in until a password is set (e.g. by an admin)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--organisation", required=True, help="the organisation's slug")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="at least 12 characters, not a common password")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = Organisation.objects.get(slug=options["organisation"])
        except Organisation.DoesNotExist:
            raise CommandError(f"organisation: no organisation has the slug {options['organisation']!r}.") from None
        try:
            user = services.create_user(
                username=options["username"],
                organisation=organisation,
                role=options["role"],
                password=options["password"],
            )
        except ValidationError as error:
            raise command_error(error) from None
        self.stdout.write(self.style.SUCCESS(f"Created user {user.username} ({user.role}) in {organisation.slug}."))
