from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts import enrolment
from accounts.models import User
from accounts.two_factor import has_second_factor


class Command(BaseCommand):
    help = (
        "Issue a one-time enrolment code with which a user sets up a second factor (the first time, or after a "
        "lost phone with --reset, which removes their apps and backup codes and signs them out). The last line "
        "is the code, shown once. Logged as a sign-in event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--reset", action="store_true", help="remove the user's second factor first (they are signed out)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"username: no user is named {options['username']!r}.")
        if has_second_factor(user) and not options["reset"]:
            raise CommandError(
                f"{user.username} already has a second factor; add --reset to remove it and issue a code."
            )
        try:
            issued = enrolment.issue_enrolment_code(user=user, by=None, reset=options["reset"])
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if issued.reset:
            self.stdout.write(f"The second factor of {user.username} is reset; their sessions ended.")
        until = timezone.localtime(issued.expires_at).strftime("%Y-%m-%d %H:%M %Z")
        self.stdout.write(f"Enrolment code for {user.username}, usable once until {until}:")
        self.stdout.write(issued.code)
