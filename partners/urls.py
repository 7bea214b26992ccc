"""The organisation pages (see partners.views for who may see what)."""

from django.urls import path

from partners import views

urlpatterns = [
    path("", views.organisation_home, name="organisation"),
    path("tokens/", views.tokens, name="organisation-tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="organisation-token-revoke"),
    path("webhooks/", views.webhook_list, name="organisation-webhooks"),
    path("webhooks/<int:endpoint_id>/deactivate/", views.webhook_deactivate, name="organisation-webhook-deactivate"),
]
