"""The review pages (see linkage.views for who may see what)."""

from django.urls import path

from linkage import views

urlpatterns = [
    path("", views.review_queue, name="link-queue"),
    path("<int:pk>/", views.pair_detail, name="link-pair"),
    path("<int:pk>/decide/", views.pair_decide, name="link-decide"),
]
