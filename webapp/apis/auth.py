"""Who may call the API: server-to-server clients with an API key, and the site's own beacon."""

from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework_api_key.models import APIKey
from rest_framework_api_key.permissions import HasAPIKey, KeyParser

# Checking a key costs a query and a hash: do it once per request and remember the answer.
_API_KEY_ATTR = "_webapp_api_key"
_key_parser = KeyParser()


def _http_request(request: HttpRequest | Request) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


def request_api_key(request: HttpRequest | Request) -> APIKey | None:
    """The valid (not revoked, not expired) API key sent in `X-API-Key`, if any."""
    http_request = _http_request(request)
    if hasattr(http_request, _API_KEY_ATTR):
        return getattr(http_request, _API_KEY_ATTR)  # type: ignore[no-any-return]
    api_key: APIKey | None = None
    key = _key_parser.get(http_request)
    if key:
        try:
            api_key = cast(APIKey, APIKey.objects.get_from_key(key))
        except APIKey.DoesNotExist:
            api_key = None
        if api_key is not None and api_key.has_expired:
            api_key = None
    setattr(http_request, _API_KEY_ATTR, api_key)
    return api_key


def request_has_api_key(request: HttpRequest | Request) -> bool:
    """Whether the request carries a valid API key."""
    return request_api_key(request) is not None


def request_sends_api_key(request: HttpRequest | Request) -> bool:
    """Whether the request sends an API key header at all (valid or not)."""
    return bool(_key_parser.get(_http_request(request)))


class ApiKeyRequired(HasAPIKey):
    """DRF permission: a valid API key in the `X-API-Key` header (keys are made in the admin)."""

    message = "A valid API key is required in the X-API-Key header."

    def has_permission(self, request: HttpRequest, view: Any) -> bool:
        return request_has_api_key(request)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_is_same_origin(request: HttpRequest | Request) -> bool:
    """Whether Origin (or Referer, when Origin is absent) names this site.

    Stands in for the CSRF token on the beacon endpoint, which sendBeacon cannot send.
    Origins listed in CSRF_TRUSTED_ORIGINS count as this site, as they do for Django's CSRF.
    """
    http_request = _http_request(request)
    source = http_request.headers.get("Origin") or http_request.headers.get("Referer")
    origin = _origin_of(source or "")
    if origin is None:
        return False
    scheme = "https" if http_request.is_secure() else "http"
    own = f"{scheme}://{http_request.get_host()}".lower()
    trusted = {o.lower().rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin == own or origin in trusted
