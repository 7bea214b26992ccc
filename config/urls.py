from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("partners.api.urls")),
    path("organisation/people/", include("accounts.people_urls")),
    path("organisation/", include("partners.urls")),
    path("lists/", include("partners.lists.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("public/figures/", include("reports.public_urls")),
    path("accounts/", include("accounts.urls")),
    path("links/", include("linkage.urls")),
    path("", include("partners.sharing_urls")),
    path("", include("casework.urls")),
    path("", include("reports.urls")),
]

# The API answers errors in its JSON shape, 500 included; the pages with pages (config/errors.py).
handler400 = "config.errors.bad_request"
handler500 = "config.errors.server_error"
