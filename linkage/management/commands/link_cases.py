"""``manage.py link_cases REF_A REF_B --same|--different``: the command line's door onto a link decision."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from casework.models import Case
from casework.references import normalise_reference
from linkage import services
from linkage.models import Decision


class Command(BaseCommand):
    help = (
        "Record that two cases are the same child (--same) or different children (--different). The decision "
        "joins the pair's trail as the command line's, and a later decision reverses it. Within one "
        "organisation it marks no duplicate: a supervisor does that on the case page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference_a", metavar="REF_A")
        parser.add_argument("reference_b", metavar="REF_B")
        decision = parser.add_mutually_exclusive_group(required=True)
        decision.add_argument("--same", action="store_const", const=Decision.SAME, dest="decision")
        decision.add_argument("--different", action="store_const", const=Decision.DIFFERENT, dest="decision")

    def handle(self, *args: Any, **options: Any) -> None:
        cases = [self._case(options[name]) for name in ("reference_a", "reference_b")]
        try:
            candidate, decision = services.decide_by_command(
                case_a=cases[0], case_b=cases[1], decision=options["decision"]
            )
        except ValidationError as refusal:
            raise CommandError(" ".join(refusal.messages) + " Nothing was recorded.") from None
        label = Decision(decision.decision).label
        score = "not compared" if candidate.score is None else f"score {candidate.score:.3f}"
        self.stdout.write(f"{cases[0].reference} and {cases[1].reference}: {label} ({score}), decision {decision.pk}.")

    @staticmethod
    def _case(text: str) -> Case:
        reference = normalise_reference(text)[:20]
        case = Case.objects.filter(reference=reference).first()
        if case is None:
            raise CommandError(f"No case has the reference “{reference}”. Nothing was recorded.")
        return case
