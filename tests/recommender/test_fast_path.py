"""Cache hits of the recommendation API answered before the stack: same answer, one query."""

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.factories import UserFactory
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

URL = "/api/recommendations/"
HOME = {"placement": "home", "k": "3"}


@pytest.fixture(autouse=True)
def _registry_polled_as_served(settings: Any) -> None:
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 60.0


def logged_in(user: Any) -> Client:
    client = Client()
    client.cookies[django_settings.CONSENT_COOKIE_NAME] = "yes"
    client.force_login(user)
    client.get("/")  # attaches the account's visitor and sets its cookie
    return client


def test_a_repeat_is_the_same_answer_and_headers_from_one_query(
    world: ServingWorld, django_assert_num_queries: Any
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[1][0])
    client = cookie_client(visitor)
    first = client.get(URL, HOME, HTTP_ORIGIN="https://shop.example")

    with django_assert_num_queries(1):
        again = client.get(URL, HOME, HTTP_ORIGIN="https://shop.example")

    assert first.headers["X-Recommendations-Cache"] == "miss"
    assert again.headers["X-Recommendations-Cache"] == "hit"
    assert again.content == first.content
    for header in ("Content-Type", "Cache-Control", "Vary"):
        assert again.headers[header] == first.headers[header], header
    assert not hasattr(again.wsgi_request, "visitor")  # answered before VisitorMiddleware


def test_an_anonymous_call_without_cookies_needs_no_query(
    world: ServingWorld, django_assert_num_queries: Any
) -> None:
    Client().get(URL, HOME)

    with django_assert_num_queries(0):
        again = Client().get(URL, HOME)

    assert again.headers["X-Recommendations-Cache"] == "hit"


def test_a_logged_in_visitor_is_served_from_one_joined_query(
    world: ServingWorld, django_assert_num_queries: Any
) -> None:
    user = UserFactory.create()
    client = logged_in(user)
    view(Visitor.objects.get(user=user), world.clusters[2][0])
    first = client.get(URL, HOME)

    with django_assert_num_queries(1):
        again = client.get(URL, HOME)

    assert again.headers["X-Recommendations-Cache"] == "hit" and again.content == first.content


@pytest.mark.parametrize("change", ["password", "logout", "deactivated"])
def test_a_session_no_longer_the_account_s_never_gets_its_cached_answer(
    world: ServingWorld, change: str
) -> None:
    user = UserFactory.create()
    client = logged_in(user)
    view(Visitor.objects.get(user=user), world.clusters[2][0])
    personal = client.get(URL, HOME)
    stale_visitor_cookie = client.cookies[django_settings.VISITOR_COOKIE_NAME].value

    if change == "password":
        user.set_password("another-password-123")
        user.save()
    elif change == "deactivated":
        user.is_active = False
        user.save()
    else:
        client.logout()
        client.cookies[django_settings.VISITOR_COOKIE_NAME] = stale_visitor_cookie
    after = client.get(URL, HOME)

    assert personal.json()["fallback"] == "" and personal.json()["items"]
    assert after.content != personal.content
    assert hasattr(after.wsgi_request, "visitor")  # the full path decided, not the cache


def test_another_account_s_session_with_this_visitor_cookie_takes_the_full_path(
    world: ServingWorld,
) -> None:
    owner, other = UserFactory.create(), UserFactory.create()
    owners_client = logged_in(owner)
    view(Visitor.objects.get(user=owner), world.clusters[2][0])
    owners = owners_client.get(URL, HOME)
    intruder = logged_in(other)
    intruder.cookies[django_settings.VISITOR_COOKIE_NAME] = owners_client.cookies[
        django_settings.VISITOR_COOKIE_NAME
    ].value

    response = intruder.get(URL, HOME)

    assert response.content != owners.content
    assert response.wsgi_request.visitor.user_id == other.pk  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"placement": "nowhere"}, 400),
        ({"placement": "home", "k": "0"}, 400),
        ({"placement": "home", "k": "3", "utm": "x"}, 200),
        ({"placement": "home", "k": "3", "visitor": "f" * 32}, 403),
    ],
)
def test_anything_unusual_goes_down_the_full_path(
    world: ServingWorld, query: dict[str, str], status: int
) -> None:
    Client().get(URL, HOME)  # the anonymous answer is cached

    response = Client().get(URL, query)

    assert response.status_code == status
    assert hasattr(response.wsgi_request, "visitor")
