from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import enrolment, services
from accounts.management.commands._errors import command_error
from accounts.models import Organisation, Role
from accounts.permissions import second_factor_required


class Command(BaseCommand):
    help = (
        "Create a user in an organisation with a role. Without --password the account "
        "cannot sign in until a password is set (e.g. by an admin). For roles that sign in with a second factor "
        "the last line is a one-time enrolment code to set it up."
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
        if second_factor_required(user):
            # The role signs in with a second factor, which a password alone never sets up.
            issued = enrolment.issue_enrolment_code(user=user, by=None)
            self.stdout.write(
                "Their role needs two-factor sign-in; give them this enrolment code (it works once, "
                f"until {issued.expires_at:%Y-%m-%d %H:%M} UTC):"
            )
            self.stdout.write(issued.code)
