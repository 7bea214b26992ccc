"""A model choice field whose choices cost one query (issue 16).

Django's ``ModelChoiceIterator`` reads the choices through ``QuerySet.iterator()``: on PostgreSQL outside a
transaction, a server-side cursor (DECLARE, FETCH, CLOSE), three round trips for a list of a few dozen
intermediaries or colleagues. A page that shows two such selects (the case page: the status form's
intermediary, a follow-up's assignee) paid six. These read them in one SELECT, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.forms.models import ModelChoiceIterator


class OneQueryChoiceIterator(ModelChoiceIterator):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for item in list(self.queryset.all()):
            yield self.choice(item)


class OneQueryModelChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    iterator = OneQueryChoiceIterator
