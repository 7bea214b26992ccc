import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.commands._errors import command_error
from casework.models import AccessLog, Case
from casework.references import normalise_reference
from casework.services import NotPermitted
from partners.lists import services
from partners.models import AnswerKind, CaseList


class Command(BaseCommand):
    help = "Record an intermediary's answer about one case on a sent list; located and returned move the case."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("list_id", type=int, help="the list's id")
        parser.add_argument("reference", help="the case's reference")
        parser.add_argument("answer", choices=AnswerKind.values)
        parser.add_argument("--on", required=True, metavar="YYYY-MM-DD", help="the date of the answer")
        parser.add_argument("--note", default="", help="a note (no personal data)")

    def handle(self, *args: Any, **options: Any) -> None:
        case_list = CaseList.objects.filter(pk=options["list_id"]).first() if options["list_id"] > 0 else None
        if case_list is None:
            raise CommandError(f"list: there is no list {options['list_id']}.")
        reference = normalise_reference(options["reference"])
        case = Case.objects.filter(reference=reference).first()
        try:
            answered_on = datetime.date.fromisoformat(options["on"])
        except ValueError:
            raise CommandError(f"on: {options['on']!r} is not a date (YYYY-MM-DD).") from None
        try:
            if case is None:
                raise services.ListNotFound
            answer = services.record_answer(
                case_list=case_list,
                case=case,
                answer=options["answer"],
                answered_on=answered_on,
                note=options["note"],
                answerer=services.Answerer(command=True),
                door=AccessLog.Door.COMMAND,
            )
        except services.ListNotFound:
            raise CommandError(f"reference: list {case_list.pk} has no case {reference}.") from None
        except ValidationError as error:
            raise command_error(error) from None
        except (PermissionDenied, NotPermitted) as refusal:
            raise CommandError(str(refusal)) from None
        moved = f"; the case is now {answer.status_change.to_status}" if answer.status_change else ""
        self.stdout.write(f"Recorded {answer.answer} on {answered_on} for {reference} on list {case_list.pk}{moved}.")
