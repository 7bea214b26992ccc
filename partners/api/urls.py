from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from partners.api import lists, releases, views

urlpatterns = [
    path("cases/", views.CaseListView.as_view(), name="api-case-list"),
    path("cases/<str:reference>/", views.CaseDetailView.as_view(), name="api-case-detail"),
    path(
        "cases/<str:reference>/status-changes/",
        views.StatusChangeCreateView.as_view(),
        name="api-status-change-create",
    ),
    path("intermediaries/", views.IntermediaryListView.as_view(), name="api-intermediary-list"),
    path("releases/", releases.ReleaseListView.as_view(), name="api-release-list"),
    path("releases/latest/", releases.LatestReleaseView.as_view(), name="api-release-latest"),
    path("releases/<int:number>/", releases.ReleaseDetailView.as_view(), name="api-release-detail"),
    path("lists/", lists.ListListView.as_view(), name="api-list-list"),
    path("lists/<int:list_id>/", lists.ListDetailView.as_view(), name="api-list-detail"),
    path(
        "lists/<int:list_id>/items/<str:reference>/answers/",
        lists.AnswerCreateView.as_view(),
        name="api-list-answer-create",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
