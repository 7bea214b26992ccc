"""The Django admin site: only for staff who have passed the second factor, signed in through the project's login."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import two_factor


class LoggedAutocompleteJsonView(AutocompleteJsonView):
    """The admin's search-as-you-type lists objects like a changelist: a model admin that logs what it
    shows (``log_listed``: cases, into the access log) is told which objects each answer named."""

    def serialize_result(self, obj: Any, to_field_name: str) -> dict[str, str]:
        self.shown.append(obj)
        return super().serialize_result(obj, to_field_name)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.shown: list[Any] = []
        response = super().get(request, *args, **kwargs)
        log_listed = getattr(self.model_admin, "log_listed", None)
        if log_listed is not None and self.shown:
            log_listed(request, self.shown)
        return response


class SecureAdminSite(admin.AdminSite):
    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        return cast(HttpResponse, LoggedAutocompleteJsonView.as_view(admin_site=self)(request))

    def has_permission(self, request: HttpRequest) -> bool:
        # The second-factor middleware stops an unverified session before it gets here;
        # this check holds even if that middleware were ever left out.
        return super().has_permission(request) and two_factor.second_factor_passed(request)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """No password form of its own: the project's sign-in, with its lockout and second factor, is the only one."""
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index", current_app=self.name)
        if request.user.is_authenticated:
            if two_factor.second_factor_outstanding(request):
                return HttpResponseRedirect(f"{reverse('two-factor-verify')}?{urlencode({'next': next_url})}")
            # Signed in, second factor passed, and still not allowed: not staff.
            raise PermissionDenied
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?{urlencode({'next': next_url})}")
