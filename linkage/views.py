"""The review pages: thin doors onto linkage.selectors (reads) and linkage.services (decisions).

Who: the host organisation's supervisors review pairs across organisations; an organisation's
supervisors review its own possible duplicates (accounts.permissions). Everyone else finds no such
page: 404, as for a case they may not see. A pair's page shows the two cases' anonymised facts side by
side and how far each encoded detail agrees, never a note and never a value; every case shown is
written to the access log, and every decision too, beside the pair's own trail of decisions.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.pages import not_found
from accounts.requests import signed_in_user
from casework.audit import log_access
from casework.models import AccessLog
from linkage import selectors, services
from linkage.models import Candidate, Decision

PAIRS_PER_PAGE = 25
_user = signed_in_user


class QueueQuery(forms.Form):
    """The queue's query string; a value it does not know is a clear 400, never a guess."""

    queue = forms.ChoiceField(
        choices=[("across", gettext_lazy("Across organisations")), ("within", gettext_lazy("Within my organisation"))],
        required=False,
    )
    state = forms.ChoiceField(
        choices=[("open", gettext_lazy("To review")), ("decided", gettext_lazy("Decided"))], required=False
    )
    page = forms.IntegerField(min_value=1, max_value=1_000_000, required=False)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(label=gettext_lazy("Decision"), choices=Decision.choices, widget=forms.RadioSelect)
    # The decision the reviewer saw ("" for none): two reviewers at once do not overwrite each other unseen.
    expected = forms.ChoiceField(choices=[("", ""), *Decision.choices], required=False, widget=forms.HiddenInput)
    survivor = forms.TypedChoiceField(
        label=gettext_lazy("The case that remains"),
        coerce=int,
        required=False,
        widget=forms.RadioSelect,
        help_text=gettext_lazy("The other case is marked a duplicate of it (same organisation only)."),
    )

    def __init__(self, *args: Any, candidate: Candidate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expected"].initial = candidate.decision
        survivor: Any = self.fields["survivor"]
        if candidate.across_organisations:
            del self.fields["survivor"]
        else:
            survivor.choices = [(case.pk, case.reference) for case in (candidate.case_a, candidate.case_b)]
            survivor.initial = candidate.case_a_id  # the earlier case, as a rule the first report


def _log(request: HttpRequest, action: str, case_ids: list[int]) -> None:
    user = _user(request)
    log_access(
        action=action,
        door=AccessLog.Door.WEB,
        organisation_id=user.organisation_id,
        case_ids=case_ids,
        user=user,
        request=request,
    )


@login_required
@require_GET
def review_queue(request: HttpRequest) -> HttpResponseBase:
    user = _user(request)
    counts = selectors.open_counts(user)
    if not counts:
        return not_found(request)
    query = QueueQuery(request.GET)
    if not query.is_valid():
        refused = {"nav": "links", "query_errors": query.errors, "counts": counts}
        return render(request, "linkage/queue.html", refused, status=400)
    queue = query.cleaned_data["queue"] or next(iter(counts))
    if queue not in counts:
        return not_found(request)
    decided = query.cleaned_data["state"] == "decided"
    pairs = selectors.review_pairs(user, across=queue == "across", decided=decided)
    page = Paginator(pairs, PAIRS_PER_PAGE).get_page(query.cleaned_data["page"])
    shown = list(page.object_list)
    _log(request, AccessLog.Action.LIST, [case_id for pair in shown for case_id in (pair.case_a_id, pair.case_b_id)])
    context: dict[str, Any] = {
        "nav": "links",
        "queue": queue,
        "state": "decided" if decided else "open",
        "counts": counts,
        "page": page,
        "pairs": shown,
        "jobs": selectors.recent_jobs() if permissions.can_review_links_across(user) else [],
    }
    return render(request, "linkage/queue.html", context)


def _pair_page(
    request: HttpRequest, candidate: Candidate, *, form: DecisionForm | None = None, status: int = 200
) -> HttpResponse:
    _log(request, AccessLog.Action.VIEW, [candidate.case_a_id, candidate.case_b_id])
    context = {
        "nav": "links",
        "pair": candidate,
        "cases": (candidate.case_a, candidate.case_b),
        "agreements": selectors.agreements(candidate),
        "trail": selectors.trail(candidate),
        "form": form or DecisionForm(candidate=candidate),
        "queue": "across" if candidate.across_organisations else "within",
    }
    return render(request, "linkage/pair.html", context, status=status)


@login_required
@require_GET
def pair_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    candidate = selectors.get_pair(_user(request), pk)
    if candidate is None:
        return not_found(request)
    return _pair_page(request, candidate)


@login_required
@require_POST
def pair_decide(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = _user(request)
    candidate = selectors.get_pair(user, pk)
    if candidate is None:
        return not_found(request)
    form = DecisionForm(request.POST, candidate=candidate)
    valid = form.is_valid()
    if "expected" in form.errors:
        # A hidden field the page always fills: the page was out of date or tampered with.
        form.add_error(None, _("This page was out of date: read the pair again below, then decide."))
    if valid:
        data = form.cleaned_data
        try:
            decided = services.decide(
                candidate_id=candidate.pk,
                user=user,
                decision=data["decision"],
                expected=data["expected"] or "",
                survivor_id=data.get("survivor"),
                request=request,
            )
        except services.PairNotFound:
            return not_found(request)
        except ValidationError as refusal:
            for field, problems in refusal.message_dict.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
            candidate.refresh_from_db()
        else:
            _announce(request, decided)
            queue = "across" if candidate.across_organisations else "within"
            return redirect(f"{reverse('link-queue')}?queue={queue}")
    return _pair_page(request, candidate, form=form, status=400)


def _announce(request: HttpRequest, decided: services.Decided) -> None:
    pair = decided.decision.candidate
    references = {"a": pair.case_a.reference, "b": pair.case_b.reference}
    if decided.decision.decision == Decision.SAME:
        messages.success(request, _("%(a)s and %(b)s recorded as the same child.") % references)
    else:
        messages.success(request, _("%(a)s and %(b)s recorded as different children.") % references)
    if decided.duplicate is not None:
        reference = decided.duplicate.reference
        messages.info(request, _("%(reference)s is now a duplicate of the other case.") % {"reference": reference})
    if decided.still_duplicate is not None:
        messages.warning(
            request,
            _("%(reference)s is still marked a duplicate: correct its status on its page if it is a child of its own.")
            % {"reference": decided.still_duplicate.reference},
        )
