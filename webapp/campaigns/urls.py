from django.urls import path

from webapp.campaigns.views import campaign_click

urlpatterns = [
    path("click/<int:creative_id>/", campaign_click, name="campaign-click"),
]
