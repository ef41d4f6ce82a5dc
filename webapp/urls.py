"""Root URLconf: admin, site pages, the API and its schema."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from recommender.dashboard.views import recommendation_dashboard

urlpatterns = [
    path("admin/recommender/dashboard/", recommendation_dashboard, name="recommendation-dashboard"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/", include("webapp.apis.urls")),
    path("campaigns/", include("webapp.campaigns.urls")),
    path("", include("webapp.views.urls")),
]
