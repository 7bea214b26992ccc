"""Synthetic test data. No real person's data: everything here is invented."""

from __future__ import annotations

import datetime as dt

import factory

from accounts.models import Organisation, Role, User
from casework.models import Case, Institution, Oblast, Sex
from casework.references import new_reference


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"ngo-{n}")
    name = factory.LazyAttribute(lambda o: f"Test organisation {o.slug}")
    kind = Organisation.Kind.NGO


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    organisation = factory.SubFactory(OrganisationFactory)
    role = Role.CASEWORKER
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"crimea-{n:02d}")
    name = factory.Sequence(lambda n: f"Institution No. {n}")
    region = "UA-43"
    kind = Institution.Kind.ORPHANAGE


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    reference = factory.LazyFunction(new_reference)
    organisation = factory.SubFactory(OrganisationFactory)
    sex = Sex.FEMALE
    birth_year = 2012
    oblast = Oblast.DONETSK
    reported_on = dt.date(2023, 1, 10)
