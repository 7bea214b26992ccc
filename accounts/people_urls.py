"""The organisation's people (mounted at /organisation/people/)."""

from django.urls import path

from accounts import people

urlpatterns = [
    path("", people.people, name="organisation-people"),
    path("<int:user_id>/enrolment-code/", people.enrolment_code, name="organisation-person-enrolment-code"),
    path("invite/", people.invite, name="organisation-person-invite"),
    path("<int:user_id>/invite-again/", people.invite_again, name="organisation-person-invite-again"),
    path("<int:user_id>/role/", people.change_role, name="organisation-person-role"),
    path("<int:user_id>/deactivate/", people.deactivate, name="organisation-person-deactivate"),
]
