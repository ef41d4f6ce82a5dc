"""Attach the request's visitor (first-party signed cookie) and keep the cookie current."""

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare

from webapp.models import Visitor
from webapp.services.visitors import (
    user_agent_is_bot,
    visitor_attach_to_user,
    visitor_create,
    visitor_resolve,
)

COOKIE_SALT = "webapp.visitor"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def tracking_allowed(request: HttpRequest) -> bool:
    """Behavioural tracking needs consent where the site requires it."""
    if not settings.CONSENT_REQUIRED:
        return True
    return request.COOKIES.get(settings.CONSENT_COOKIE_NAME) == "yes"


def visitor_signed_token(visitor: Visitor) -> str:
    """The value of the visitor cookie, also used as the beacon's body token."""
    return signing.dumps(str(visitor.key), salt=COOKIE_SALT, compress=False)


def visitor_key_from_token(token: str) -> str | None:
    try:
        value = signing.loads(token, salt=COOKIE_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, str) else None


def session_user_adopt(request: HttpRequest, user: User) -> bool:
    """Use `user` (already loaded with the visitor) as request.user if the session is theirs.

    The same checks as django.contrib.auth.get_user: the session names this user and the
    model backend, the account is active and the session's auth hash matches the current
    password. Anything else is left to Django (which then loads the user itself).
    """
    session = request.session
    current_hash = user.get_session_auth_hash()
    if (
        session.get(SESSION_KEY) != str(user.pk)
        or session.get(BACKEND_SESSION_KEY) != MODEL_BACKEND
        or MODEL_BACKEND not in settings.AUTHENTICATION_BACKENDS
        or not user.is_active
        or not constant_time_compare(session.get(HASH_SESSION_KEY, ""), current_hash)
    ):
        return False
    request._cached_user = user  # type: ignore[attr-defined]  # AuthenticationMiddleware's memo
    return True


class VisitorMiddleware:
    """Sets ``request.visitor`` (None without consent) and refreshes the cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.visitor = self._visitor(request)  # type: ignore[attr-defined]
        response = self.get_response(request)
        visitor: Visitor | None = getattr(request, "visitor", None)
        token = request.COOKIES.get(settings.VISITOR_COOKIE_NAME)
        if visitor is not None and visitor_key_from_token(token or "") != str(visitor.key):
            response.set_cookie(
                settings.VISITOR_COOKIE_NAME,
                visitor_signed_token(visitor),
                max_age=settings.VISITOR_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response

    def _visitor(self, request: HttpRequest) -> Visitor | None:
        if not tracking_allowed(request) or request.path.startswith(("/static/", "/admin/jsi18n")):
            return None
        key = visitor_key_from_token(request.COOKIES.get(settings.VISITOR_COOKIE_NAME, ""))
        visitor = visitor_resolve(key=key) if key else None
        if visitor is not None and visitor.user is not None:
            session_user_adopt(request, visitor.user)
        if request.user.is_authenticated:
            if visitor is None or visitor.user_id != request.user.pk:
                visitor = visitor_attach_to_user(visitor=visitor, user=request.user)
            return visitor
        if visitor is not None and visitor.user_id is not None:
            # The cookie belongs to an account that logged out: start a fresh anonymous one.
            visitor = None
        if visitor is None and request.path.startswith("/api/"):
            return None  # API clients identify visitors explicitly; no cookie visitors here.
        if visitor is None:
            is_bot = user_agent_is_bot(request.headers.get("User-Agent", ""))
            visitor = visitor_create(is_bot=is_bot, consent=settings.CONSENT_REQUIRED)
        return visitor
