from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.commands._errors import command_error
from accounts.models import Organisation, TokenScope
from partners import tokens


class Command(BaseCommand):
    help = (
        "Create an API token for an organisation. The token is the last line printed; "
        "it is shown only this once (only its hash is stored)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organisation", help="the organisation's slug")
        parser.add_argument("--scope", required=True, choices=TokenScope.values)
        parser.add_argument("--expires", type=int, metavar="DAYS", help="expire after this many days")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            organisation = Organisation.objects.get(slug=options["organisation"])
        except Organisation.DoesNotExist:
            raise CommandError(f"organisation: no organisation has the slug {options['organisation']!r}.") from None
        try:
            token, plain = tokens.create_token(
                organisation=organisation,
                scope=options["scope"],
                created_by=None,
                name=options["name"],
                expires_in_days=options["expires"],
            )
        except ValidationError as error:
            raise command_error(error) from None
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token {token.prefix} for {organisation.slug}, scope {token.scope}, expires {expiry}.")
        self.stderr.write("Store it now: it cannot be shown again.")
        self.stdout.write(plain)
