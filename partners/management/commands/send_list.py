import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.management.commands._errors import command_error
from accounts.models import Organisation
from casework.models import Case
from casework.references import normalise_reference
from partners.lists import services


class Command(BaseCommand):
    help = (
        "Send a list of an organisation's cases to an intermediary: the cases are shared with it (scope answer) "
        "until the list is closed. Prints the list's id on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organisation", required=True, help="the sending organisation's slug")
        parser.add_argument("--intermediary", required=True, help="the intermediary's slug")
        parser.add_argument("--sent-on", required=True, metavar="YYYY-MM-DD", help="the date the list was sent")
        parser.add_argument("--reference", required=True, nargs="+", metavar="REF", help="case references")
        parser.add_argument("--note", default="", help="a note on the list (no personal data)")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = {"organisation": options["organisation"], "intermediary": options["intermediary"]}
        found = {o.slug: o for o in Organisation.objects.filter(slug__in=slugs.values())}
        for role, slug in slugs.items():
            if slug not in found:
                raise CommandError(f"{role}: no organisation has the slug {slug!r}.")
        organisation, intermediary = found[slugs["organisation"]], found[slugs["intermediary"]]
        try:
            sent_on = datetime.date.fromisoformat(options["sent_on"])
        except ValueError:
            raise CommandError(f"sent-on: {options['sent_on']!r} is not a date (YYYY-MM-DD).") from None
        references = sorted({normalise_reference(ref) for ref in options["reference"]})
        cases = list(Case.objects.filter(organisation=organisation, reference__in=references))
        missing = sorted(set(references) - {case.reference for case in cases})
        if missing:
            raise CommandError(f"reference: {organisation.slug} has no case {', '.join(missing)}.")
        try:
            with transaction.atomic():
                made = services.create_list(
                    organisation=organisation,
                    intermediary=intermediary,
                    created_by=None,
                    note=options["note"],
                    cases=cases,
                )
                services.send_list(case_list=made, sent_on=sent_on, by=None)
        except ValidationError as error:
            raise command_error(error) from None
        self.stderr.write(
            f"Sent list {made.pk}: {len(cases)} case(s) of {organisation.slug} to {intermediary.slug} on {sent_on}."
        )
        self.stdout.write(str(made.pk))
