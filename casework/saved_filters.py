"""Saved filters: a user keeps case-list filters under a name, for themself only.

A filter is kept as the list's own query string, checked by the list's filter
form (casework.forms.CaseFilter) before it is saved: what is saved is exactly
what the list would accept, and nothing else of the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils.translation import gettext as _

from casework.models import Case
from casework.screening import screen_text
from casework.task_models import SavedFilter

if TYPE_CHECKING:
    from accounts.models import User

MAX_PER_USER = 30
MAX_NAME = 80
MAX_QUERY = 1000


def saved_filters(user: User) -> list[SavedFilter]:
    return list(SavedFilter.objects.filter(user=user).order_by("name", "id"))


def save_filter(*, user: User, name: str, query: str) -> SavedFilter:
    """Save (or replace, under the same name) the list's filters."""
    from casework.forms import CaseFilter  # the list's own parser: the one judge of a valid filter

    errors: dict[str, list[str]] = {}
    name = " ".join((name or "").split())
    if not name:
        errors["name"] = [_("Give the filter a name.")]
    elif len(name) > MAX_NAME:
        errors["name"] = [_("Keep the name under %(limit)s characters.") % {"limit": MAX_NAME}]
    else:
        try:
            screen_text(name, field="name")
        except ValidationError as exc:
            errors["name"] = exc.message_dict["name"]
    data = QueryDict(query or "", mutable=True)
    known = set(CaseFilter.base_filters)
    for key in list(data):
        if key not in known:
            del data[key]
    kept = QueryDict(mutable=True)
    for key in sorted(data):
        values = [value for value in data.getlist(key) if value]
        if values:
            kept.setlist(key, values)
    if not kept:
        errors.setdefault("query", []).append(_("Choose at least one filter to save."))
    elif len(kept.urlencode()) > MAX_QUERY or not CaseFilter(kept, queryset=Case.objects.none()).is_valid():
        errors.setdefault("query", []).append(_("These filters could not be read: correct them before saving."))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        existing = SavedFilter.objects.select_for_update().filter(user=user, name=name).first()
        if existing is not None:
            existing.query = kept.urlencode()
            existing.save(update_fields=["query"])
            return existing
        if SavedFilter.objects.filter(user=user).count() >= MAX_PER_USER:
            raise ValidationError(
                {"name": [_("You have %(limit)s saved filters: delete one first.") % {"limit": MAX_PER_USER}]}
            )
        return SavedFilter.objects.create(user=user, name=name, query=kept.urlencode())


def delete_filter(*, user: User, filter_id: int) -> bool:
    """Delete one of the user's own saved filters (another's is not found)."""
    deleted, _by_model = SavedFilter.objects.filter(user=user, pk=filter_id).delete()
    return bool(deleted)
