"""Template context shared by every page."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from webapp.middleware import tracking_allowed, visitor_signed_token
from webapp.models import Category


def site(request: HttpRequest) -> dict[str, Any]:
    visitor = getattr(request, "visitor", None)
    return {
        "site_name": settings.SITE_NAME,
        "consent_required": settings.CONSENT_REQUIRED,
        "consent_given": tracking_allowed(request),
        "consent_decided": settings.CONSENT_COOKIE_NAME in request.COOKIES,
        "beacon_token": visitor_signed_token(visitor) if visitor is not None else "",
        "nav_categories": Category.objects.filter(parent__isnull=True).order_by("name")[:12],
    }
