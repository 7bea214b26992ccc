import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.management.commands._errors import command_error
from accounts.models import Organisation
from casework.models import Case
from casework.references import normalise_reference
from partners import services
from partners.models import SHAREABLE_SCOPES


class Command(BaseCommand):
    help = "Share cases of an owning organisation with a partner organisation, for reading or updating."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("owner", help="the owning organisation's slug")
        parser.add_argument("partner", help="the partner organisation's slug")
        parser.add_argument("--scope", required=True, choices=SHAREABLE_SCOPES)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--reference", nargs="+", metavar="REF", help="case references, e.g. C-7K3M-Q9XR")
        which.add_argument("--all", action="store_true", help="every case of the owner")
        parser.add_argument("--expires", metavar="YYYY-MM-DD", help="the share ends at the start of this day")

    def handle(self, *args: Any, **options: Any) -> None:
        organisations = {
            o.slug: o for o in Organisation.objects.filter(slug__in=[options["owner"], options["partner"]])
        }
        for role in ("owner", "partner"):
            if options[role] not in organisations:
                raise CommandError(f"{role}: no organisation has the slug {options[role]!r}.")
        owner, partner = organisations[options["owner"]], organisations[options["partner"]]
        expires_at = None
        if options["expires"]:
            try:
                day = datetime.date.fromisoformat(options["expires"])
            except ValueError:
                raise CommandError(f"expires: {options['expires']!r} is not a date (YYYY-MM-DD).") from None
            expires_at = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
        if options["all"]:
            cases = list(Case.objects.filter(organisation=owner).only("pk", "organisation_id"))
        else:
            references = [normalise_reference(ref) for ref in options["reference"]]
            cases = list(
                Case.objects.filter(organisation=owner, reference__in=references).only(
                    "pk", "organisation_id", "reference"
                )
            )
            missing = sorted(set(references) - {case.reference for case in cases})
            if missing:
                raise CommandError(f"reference: {owner.slug} has no case {', '.join(missing)}.")
        try:
            shares = services.share_cases(
                owner=owner, partner=partner, cases=cases, scope=options["scope"], expires_at=expires_at, shared_by=None
            )
        except ValidationError as error:
            raise command_error(error) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Shared {len(shares)} case(s) of {owner.slug} with {partner.slug} ({options['scope']})."
            )
        )
