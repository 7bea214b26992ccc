"""Writes to organisations and users."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Organisation, Role, User
from accounts.sessions import end_sessions


def create_organisation(*, slug: str, name: str, kind: str, is_host: bool = False) -> Organisation:
    errors: dict[str, list[str]] = {}
    try:
        validate_slug(slug)
    except ValidationError:
        errors["slug"] = [_("Use only lower-case letters, digits, hyphens and underscores.")]
    if slug != slug.lower():
        errors["slug"] = [_("Use only lower-case letters, digits, hyphens and underscores.")]
    if not name.strip():
        errors["name"] = [_("Give the organisation's name.")]
    if kind not in Organisation.Kind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(Organisation.Kind.values)}]
    if "slug" not in errors and Organisation.objects.filter(slug=slug).exists():
        errors["slug"] = [_("An organisation with the slug “%(slug)s” already exists.") % {"slug": slug}]
    host = Organisation.objects.filter(is_host=True).first() if is_host else None
    if host is not None:
        errors["is_host"] = [_("%(other)s hosts the register already: unmark it first.") % {"other": host}]
    if errors:
        raise ValidationError(errors)
    return Organisation.objects.create(slug=slug, name=name.strip(), kind=kind, is_host=is_host)


def create_user(
    *,
    username: str,
    organisation: Organisation,
    role: str,
    password: str | None,
    is_superuser: bool = False,
) -> User:
    """Create a user; without a password the account cannot sign in until one is set."""
    errors: dict[str, list[str]] = {}
    if role not in Role.values:
        errors["role"] = [_("Choose one of: %(roles)s.") % {"roles": ", ".join(Role.values)}]
    username_field = User._meta.get_field("username")
    try:
        username_field.clean(username, None)
    except ValidationError as exc:
        errors["username"] = list(exc.messages)
    if "username" not in errors and User.objects.filter(username=username).exists():
        errors["username"] = [_("A user named “%(name)s” already exists.") % {"name": username}]
    user = User(username=username, organisation=organisation, role=role)
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        user.is_superuser = is_superuser
        user.is_staff = is_superuser
        user.save()
    return user


def deactivate_users(*, users: Iterable[User], by: User) -> tuple[int, int]:
    """Deactivate accounts at once: every open session ends now. Never the acting account.

    Returns (users deactivated, sessions ended).
    """
    targets = [user for user in users if user.pk != by.pk]
    with transaction.atomic():
        User.objects.filter(pk__in=[user.pk for user in targets]).update(is_active=False)
    return len(targets), end_sessions(*targets)
