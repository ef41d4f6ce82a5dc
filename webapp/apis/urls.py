"""API routes; each API module owns its own urlpatterns."""

from django.urls import include, path

urlpatterns = [
    path("", include("webapp.apis.events")),
    path("", include("webapp.apis.catalog")),
    path("", include("webapp.apis.privacy")),
    path("", include("recommender.apis")),
    path("", include("webapp.segments.apis")),
]
