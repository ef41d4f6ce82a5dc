"""Responses of pages that rendered a campaign slot are private (never shared caches)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control

RENDERED_ATTRIBUTE = "_campaign_rendered"


def campaign_rendered_mark(request: HttpRequest) -> None:
    """Note that this request's page shows per-visitor campaign content."""
    setattr(request, RENDERED_ATTRIBUTE, True)


class CampaignPrivateCacheMiddleware:
    """Adds Cache-Control: private when a campaign slot was decided for the page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(request, RENDERED_ATTRIBUTE, False):
            patch_cache_control(response, private=True)
        return response
