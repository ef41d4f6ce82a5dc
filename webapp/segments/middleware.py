"""Counts visits and remembers each visit's landing facts for segments.

Runs after `VisitorMiddleware`. A visit starts when the request carries no visit cookie
for this visitor (it lives SEGMENTS_VISIT_GAP_SECONDS and is refreshed by every page
response), so requests inside a visit cost no query; the visit start costs one upsert.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from webapp.models import Visitor
from webapp.segments.services import visitor_profile_visit_start
from webapp.segments.visits import visit_facts_of

VISIT_COOKIE_NAME = "pp_visit"
# API calls, assets and the admin are not page views of a visit.
NOT_PAGES = ("/api/", "/static/", "/admin/", "/media/")


class VisitProfileMiddleware:
    """Starts a visit in the visitor's profile when the visit cookie is missing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        page = not request.path.startswith(NOT_PAGES)
        visitor: Visitor | None = getattr(request, "visitor", None)
        if page and visitor is not None and not self._in_visit(request, visitor):
            visitor_profile_visit_start(visitor=visitor, facts=visit_facts_of(request))
        response = self.get_response(request)
        visitor = getattr(request, "visitor", None)
        if page and visitor is not None:
            response.set_cookie(
                VISIT_COOKIE_NAME,
                str(visitor.key),
                max_age=settings.SEGMENTS_VISIT_GAP_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response

    @staticmethod
    def _in_visit(request: HttpRequest, visitor: Visitor) -> bool:
        # The cookie names the visitor: after a login the account's visitor starts its visit.
        return request.COOKIES.get(VISIT_COOKIE_NAME) == str(visitor.key)
