"""POST /api/visitor-context/: validation, who may write whose context, storage."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import VisitorFactory
from webapp.middleware import visitor_signed_token
from webapp.models import Visitor
from webapp.segments.models import VisitorProfile

pytestmark = pytest.mark.django_db

URL = "/api/visitor-context/"


def site_client(visitor: Visitor, *, origin: str | None = "http://testserver") -> Client:
    client = Client(HTTP_ORIGIN=origin) if origin else Client()
    client.cookies["pp_consent"] = "yes"
    client.cookies["pp_visitor"] = visitor_signed_token(visitor)
    return client


def test_an_api_key_client_stores_context_for_a_named_visitor(keyed_client: APIClient) -> None:
    visitor = VisitorFactory.create()
    body = {"visitor": str(visitor.key), "context": {"activity_level": "high", "steps": 8200}}
    response = keyed_client.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "visitor": str(visitor.key),
        "context": {"activity_level": "high", "steps": 8200},
    }
    response = keyed_client.post(
        URL,
        {"visitor": str(visitor.key), "context": {"steps": None, "sleep_ok": True}},
        format="json",
    )
    assert response.json()["context"] == {"activity_level": "high", "sleep_ok": True}
    assert VisitorProfile.objects.get(pk=visitor.pk).context == response.json()["context"]


def test_the_site_stores_context_for_its_own_cookie_visitor() -> None:
    visitor = VisitorFactory.create()
    response = site_client(visitor).post(
        URL, {"context": {"theme": "dark"}}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert VisitorProfile.objects.get(pk=visitor.pk).context == {"theme": "dark"}


@pytest.mark.parametrize(
    ("make_client", "body", "status"),
    [
        ("cross_origin", {"context": {"theme": "dark"}}, 403),
        ("no_cookie", {"context": {"theme": "dark"}}, 403),
        ("cookie_names_other", {"visitor": "other", "context": {"theme": "dark"}}, 403),
        ("bad_key", {"visitor": "self", "context": {"theme": "dark"}}, 403),
        ("keyed", {"context": {"theme": "dark"}}, 400),
        ("keyed", {"visitor": "unknown", "context": {"theme": "dark"}}, 404),
    ],
)
def test_who_may_write(make_client: str, body: dict[str, Any], status: int, api_key: str) -> None:
    visitor, other = VisitorFactory.create(), VisitorFactory.create()
    clients = {
        "cross_origin": lambda: site_client(visitor, origin="https://evil.example"),
        "no_cookie": lambda: Client(HTTP_ORIGIN="http://testserver"),
        "cookie_names_other": lambda: site_client(visitor),
        "bad_key": lambda: Client(HTTP_X_API_KEY="nope.nope"),
        "keyed": lambda: Client(HTTP_X_API_KEY=api_key),
    }
    keys = {
        "other": str(other.key),
        "self": str(visitor.key),
        "unknown": "7d0c3e1e-1111-4d2b-9a51-3c2d1e0f9a87",
    }
    if "visitor" in body:
        body = {**body, "visitor": keys[body["visitor"]]}
    response = clients[make_client]().post(URL, body, content_type="application/json")
    assert response.status_code == status, response.content
    assert not VisitorProfile.objects.exists()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "Send 1 to 20 keys"),
        ({f"k{i}": i for i in range(21)}, "Send 1 to 20 keys"),
        ({"Bad-Key": 1}, "lowercase letters"),
        ({"9lives": 1}, "starting with a letter"),
        ({"note": "x" * 201}, "at most 200 characters"),
        ({"tags": ["a", "b"]}, "Values are text, numbers"),
        ({"nested": {"a": 1}}, "Values are text, numbers"),
        ("not an object", "dictionary"),
    ],
)
def test_bad_context_is_a_400_naming_the_key(
    keyed_client: APIClient, context: Any, message: str
) -> None:
    visitor = VisitorFactory.create()
    response = keyed_client.post(
        URL, {"visitor": str(visitor.key), "context": context}, format="json"
    )
    assert response.status_code == 400
    assert message in str(response.json()["context"])
    assert not VisitorProfile.objects.exists()


def test_the_number_of_stored_keys_is_capped(keyed_client: APIClient, settings: Any) -> None:
    settings.SEGMENTS_CONTEXT_MAX_KEYS = 3
    visitor = VisitorFactory.create()
    body = {"visitor": str(visitor.key), "context": {"a": 1, "b": 2, "c": 3}}
    assert keyed_client.post(URL, body, format="json").status_code == 200
    body["context"] = {"d": 4}
    response = keyed_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "at most 3 context keys" in str(response.json())
    assert VisitorProfile.objects.get(pk=visitor.pk).context == {"a": 1, "b": 2, "c": 3}
