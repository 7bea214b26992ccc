"""Signing in and out, the second factor, a forgotten password, and the account page."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import people, views

urlpatterns = [
    path("", views.account, name="account"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.ResetRequestView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.ResetSentView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", views.ResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password-reset/done/", views.ResetDoneView.as_view(), name="password_reset_complete"),
    path("password/", views.password_change, name="account-password"),
    path("notices/", views.notice_choices, name="account-notices"),
    path("invitation/<int:invitation_id>/<str:token>/", people.accept_invitation, name="accept-invitation"),
    path("two-factor/", views.verify, name="two-factor-verify"),
    path("two-factor/setup/", views.setup, name="two-factor-setup"),
    path("two-factor/backup-codes/", views.backup_codes, name="two-factor-backup-codes"),
    path("two-factor/apps/<int:device_id>/remove/", views.remove_app, name="account-remove-app"),
]
