from django.urls import path

from reports import public

urlpatterns = [
    path("", public.latest, name="public-figures"),
    path("<int:number>/", public.by_number, name="public-release"),
    path("<int:number>/download/<str:fmt_name>/", public.release_file, name="public-release-file"),
]
