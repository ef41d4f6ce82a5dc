"""Answer a repeated recommendation API call from the cache, before the rest of the stack.

Most calls repeat an answer already cached for the same visitor state (their event
generation and the active models). Such a call costs one query here (the visitor row
with its session and account, joined) instead of the whole middleware and DRF stack.
Anything unusual goes down the normal path, which also fills the cache: an API key or a
named visitor, a merged or unknown visitor, a session that does not belong to the
visitor (logged out, password changed, another account), a running experiment
(variants decide and log exposures), or simply a miss.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import caches
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.crypto import constant_time_compare

from recommender.answers import answer_body, answer_key
from recommender.candidates import Placement
from recommender.selectors import serving_identity
from webapp.experiments.selectors import experiments_running_cached
from webapp.middleware import MODEL_BACKEND, visitor_key_from_token

MAX_K = 50  # as the API's serializer
PLACEMENTS = frozenset(p.value for p in Placement)
KNOWN_PARAMETERS = frozenset({"placement", "k", "item", "category"})
VARY = ["Cookie", "X-API-Key", "Origin"]

STATE_SQL = """
    SELECT v.id, v.generation, v.user_id, v.merged_into_id, s.session_data,
           u.password, u.is_active
    FROM webapp_visitor v
    LEFT JOIN django_session s ON s.session_key = %(session)s AND s.expire_date > now()
    LEFT JOIN {users} u ON u.id = v.user_id
    WHERE v.key = %(key)s
"""


class SlowPath(Exception):
    """This call needs the full stack (and it is not an error)."""


class RecommendationCacheMiddleware:
    """Serves cache hits of GET /api/recommendations/; everything else passes through."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._path: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path_info == self._api_path():
            try:
                return cached_answer(request)
            except SlowPath:
                pass
        return self.get_response(request)

    def _api_path(self) -> str:
        if self._path is None:
            self._path = reverse("recommendations")
        return self._path


def cached_answer(request: HttpRequest) -> HttpResponse:
    """The cached JSON answer for this call, exactly as the API view cached it."""
    key = answer_cache_key(request)
    parts = caches["recommendations"].get(key)
    if parts is None:
        raise SlowPath("miss")
    try:
        origin = f"{request.scheme}://{request.get_host()}"
    except DisallowedHost as error:
        raise SlowPath("host") from error
    response = HttpResponse(answer_body(parts, origin), content_type="application/json")
    response["X-Recommendations-Cache"] = "hit"
    return answer_headers(request, response)


def answer_cache_key(request: HttpRequest) -> str:
    """The key under which recommender.apis stored this call's answer (SlowPath if unsure)."""
    params = request.GET
    if not KNOWN_PARAMETERS.issuperset(params) or "HTTP_X_API_KEY" in request.META:
        raise SlowPath("named visitor, API key or unknown parameters")
    placement, k = params.get("placement", ""), params.get("k", "10")
    if placement not in PLACEMENTS or not k.isdigit() or not 1 <= int(k) <= MAX_K:
        raise SlowPath("invalid: the API answers with its 400")
    if experiments_running_cached():
        raise SlowPath("experiments decide variants and log exposures")
    return answer_key(
        placement=placement,
        item=params.get("item", ""),
        category=params.get("category", ""),
        identity=serving_identity(visitor_state(request), ""),
        k=int(k),
    )


def visitor_state(request: HttpRequest) -> str:
    """ "<owner>:<generation>" as served_cache_identity has it, from one query at most."""
    if settings.CONSENT_REQUIRED and request.COOKIES.get(settings.CONSENT_COOKIE_NAME) != "yes":
        return "anon:0"  # no tracking: no visitor
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    token = request.COOKIES.get(settings.VISITOR_COOKIE_NAME)
    key = visitor_key_from_token(token) if token else None
    if key is None:
        if session_key:
            raise SlowPath("maybe logged in without a visitor yet")
        return "anon:0"
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(STATE_SQL.format(users=users), {"key": key, "session": session_key})
        row = cursor.fetchone()
    if row is None:
        raise SlowPath("unknown visitor")
    visitor_pk, generation, user_pk, merged_into, session_data, password, is_active = row
    if merged_into is not None:
        raise SlowPath("merged visitor")
    session = SessionStore().decode(session_data) if session_data else {}
    if not _session_matches(session, user_pk, password, is_active):
        raise SlowPath("the session is not this visitor's")
    return f"{'anon' if generation == 0 else visitor_pk}:{generation}"


def _session_matches(
    session: dict[str, Any], user_pk: int | None, password: str | None, is_active: bool | None
) -> bool:
    """The session is anonymous for an anonymous visitor, or logged in as its account."""
    if user_pk is None:
        return SESSION_KEY not in session
    if (
        session.get(SESSION_KEY) != str(user_pk)
        or session.get(BACKEND_SESSION_KEY) != MODEL_BACKEND
        or MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS
        or not is_active
    ):
        return False
    expected = get_user_model()(password=password or "").get_session_auth_hash()
    return constant_time_compare(session.get(HASH_SESSION_KEY, ""), expected)


def answer_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """What the API view adds to every answer: private caching, Vary, the CORS allow-list."""
    patch_cache_control(response, private=True, max_age=0)
    patch_vary_headers(response, VARY)
    origin = request.headers.get("Origin", "")
    if origin and origin in settings.RECOMMENDER_CORS_ORIGINS:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Credentials"] = "true"
        response["Access-Control-Allow-Headers"] = "Content-Type, X-API-Key"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    return response
