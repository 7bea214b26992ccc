"""Signing in and out, the second factor, and the account page."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.account, name="account"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.password_change, name="account-password"),
    path("two-factor/", views.verify, name="two-factor-verify"),
    path("two-factor/setup/", views.setup, name="two-factor-setup"),
    path("two-factor/backup-codes/", views.backup_codes, name="two-factor-backup-codes"),
    path("two-factor/apps/<int:device_id>/remove/", views.remove_app, name="account-remove-app"),
]
