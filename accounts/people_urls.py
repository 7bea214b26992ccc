"""The organisation's people (mounted at /organisation/people/)."""

from django.urls import path

from accounts import people

urlpatterns = [
    path("", people.people, name="organisation-people"),
    path("<int:user_id>/enrolment-code/", people.enrolment_code, name="organisation-person-enrolment-code"),
]
