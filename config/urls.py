from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from partners import account, auth

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("partners.api.urls")),
    path("organisation/", include("partners.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/login/", auth.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", account.account, name="account"),
    path("accounts/password/", account.password_change, name="account-password"),
    path("accounts/two-factor/apps/<int:device_id>/remove/", account.remove_app, name="account-remove-app"),
    path("accounts/two-factor/", auth.verify, name="two-factor-verify"),
    path("accounts/two-factor/setup/", auth.setup, name="two-factor-setup"),
    path("accounts/two-factor/backup-codes/", auth.backup_codes, name="two-factor-backup-codes"),
    path("", include("casework.urls")),
    path("", include("reports.urls")),
]
