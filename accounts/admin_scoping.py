"""The admin confined to an organisation: what staff who are not superusers see and change.

DESIGN: Django admin is for superusers and staff with two-factor sign-in. Staff
who are not superusers see and change only their own organisation's objects,
and only superusers change who is staff or superuser, or which organisation
a user belongs to. Every admin of the project derives from one of these:

- ``OrganisationScopedAdmin``: the model belongs to an organisation through
  ``organisation_path`` (``"organisation"``, ``"case__organisation"``,
  ``"user__organisation"``): its lists, pages, actions, inlines, lookups and
  the choices of its foreign keys are filtered to the staff member's
  organisation, and a new object is their organisation's.
- ``SuperuserOnlyAdmin``: data shared by every organisation, or about all of
  them (institutions are read-only for others; snapshots, groups and the
  lockout's records are for superusers only).

``tests/test_admin_confinement.py`` walks every registered admin model as
staff of two organisations.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest


def is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


def organisation_of(request: HttpRequest) -> int | None:
    return getattr(request.user, "organisation_id", None)


def _scoped_queryset(model: type[models.Model], request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Only the requester's organisation's objects of ``model`` (when it belongs to organisations)."""
    if is_superuser(request):
        return queryset
    path = ORGANISATION_PATHS.get(model)
    if path is None:
        return queryset
    if path == "":
        return queryset.filter(pk=organisation_of(request))  # the organisations themselves
    return queryset.filter(**{f"{path}_id": organisation_of(request)})


# How each model that belongs to an organisation reaches it ("" for Organisation itself). Filled in
# by the admins below (and read for the choices of foreign keys to these models).
ORGANISATION_PATHS: dict[type[models.Model], str] = {}


def register_organisation_path(model: type[models.Model], path: str) -> None:
    ORGANISATION_PATHS[model] = path


class OrganisationScopedAdmin(admin.ModelAdmin[Any]):
    """An admin whose objects belong to organisations: staff see and change their own organisation's only."""

    organisation_path: str = "organisation"
    # Fields only a superuser may set (the organisation among them); shown read-only to other staff.
    superuser_fields: tuple[str, ...] = ()

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        register_organisation_path(model, self.organisation_path)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _scoped_queryset(self.model, request, super().get_queryset(request))

    def _owner_field(self) -> str | None:
        """The model's own field naming its organisation, when it has one (not a path through another model)."""
        return self.organisation_path if self.organisation_path and "__" not in self.organisation_path else None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not is_superuser(request):
            owner = self._owner_field()
            extra = [*self.superuser_fields, *([owner] if owner else [])]
            fields.extend(name for name in extra if name not in fields)
        return fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        related = db_field.related_model
        queryset = getattr(field, "queryset", None)
        if field is not None and queryset is not None and not is_superuser(request) and related in ORGANISATION_PATHS:
            field.queryset = _scoped_queryset(related, request, queryset)
        return field

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        related = db_field.related_model
        queryset = getattr(field, "queryset", None)
        if field is not None and queryset is not None and not is_superuser(request) and related in ORGANISATION_PATHS:
            field.queryset = _scoped_queryset(related, request, queryset)
        return field

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        owner = self._owner_field()
        if not is_superuser(request) and owner:
            if change and getattr(obj, f"{owner}_id") != organisation_of(request):
                raise PermissionDenied
            # A new object is the staff member's organisation's, whatever the form said.
            setattr(obj, f"{owner}_id", organisation_of(request))
        super().save_model(request, obj, form, change)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A filter by organisation would list every organisation's name: superusers only.
        filters = list(super().get_list_filter(request))
        if is_superuser(request):
            return filters
        return [item for item in filters if item not in {"organisation", "organisation__slug", "user__organisation"}]


class ReadOnlyAdmin:
    """Put first among an admin's (or an inline's) bases: nothing it shows can be added, changed or deleted
    from the admin, whoever asks. What may be seen is the other bases' to say."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SuperuserOnlyAdmin(admin.ModelAdmin[Any]):
    """Data of every organisation, or about all of them: for superusers only (read-only to other staff
    when ``staff_may_read``)."""

    staff_may_read = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) or (self.staff_may_read and super().has_module_permission(request))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) or (self.staff_may_read and super().has_view_permission(request, obj))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)
