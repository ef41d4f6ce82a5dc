"""GET/POST /api/recommendations/: parameters, privacy, fallbacks, headers, schema."""

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from recommender.candidates import Section
from tests.recommender.conftest import ServingWorld, view
from webapp.middleware import visitor_signed_token
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

URL = "/api/recommendations/"


def cookie_client(visitor: Visitor) -> Client:
    client = Client()
    client.cookies[settings.CONSENT_COOKIE_NAME] = "yes"
    client.cookies[settings.VISITOR_COOKIE_NAME] = visitor_signed_token(visitor)
    return client


def ids(response: Any) -> list[str]:
    return [entry["id"] for entry in response.json()["items"]]


def cluster_of_ids(world: ServingWorld, external_ids: list[str]) -> set[int]:
    return {int(external_id.split("-")[1]) for external_id in external_ids}


def test_the_cookie_visitor_gets_their_own_top_picks(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    for item in world.clusters[1][:3]:
        view(visitor, item)

    response = cookie_client(visitor).get(URL, {"placement": "home", "k": "3"})

    assert response.status_code == 200
    body = response.json()
    assert body["section"] == Section.TOP_PICKS and body["fallback"] == ""
    assert cluster_of_ids(world, ids(response)) == {1}
    first = body["items"][0]
    assert first["rank"] == 1 and first["source"]["model"] == "ease"
    assert isinstance(first["source"]["version"], int) and first["reason"]
    assert first["url"].endswith(f"/i/{first['id']}/")
    assert "private" in response.headers["Cache-Control"]
    assert "Cookie" in response.headers["Vary"]


def test_an_unknown_or_cookieless_visitor_gets_popular_items_not_an_error(
    world: ServingWorld,
) -> None:
    response = Client().get(URL, {"placement": "home", "k": "4"})

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Popular right now" and len(body["items"]) == 4
    assert {entry["source"]["model"] for entry in body["items"]} == {"trending"}


def test_item_placement_returns_the_items_neighbours(world: ServingWorld) -> None:
    item = world.clusters[2][0]

    response = Client().get(URL, {"placement": "item", "item": item.external_id, "k": "3"})

    assert response.status_code == 200
    assert response.json()["section"] == Section.SIMILAR
    assert cluster_of_ids(world, ids(response)) == {2}
    assert item.external_id not in ids(response)


def test_category_placement_ranks_inside_the_category(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])

    response = cookie_client(visitor).get(
        URL, {"placement": "category", "category": world.categories[3].slug, "k": "4"}
    )

    assert response.status_code == 200
    assert cluster_of_ids(world, ids(response)) == {3}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "placement"),
        ({"placement": "sidebar"}, "placement"),
        ({"placement": "home", "k": "0"}, "k"),
        ({"placement": "home", "k": "51"}, "k"),
        ({"placement": "home", "k": "ten"}, "k"),
        ({"placement": "item"}, "item"),
        ({"placement": "category"}, "category"),
        ({"placement": "home", "visitor": "not-a-uuid"}, "visitor"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(
    world: ServingWorld, params: dict[str, str], field: str
) -> None:
    response = Client().get(URL, params)

    assert response.status_code == 400
    assert field in response.json()


def test_unknown_item_or_category_is_a_404(world: ServingWorld) -> None:
    assert Client().get(URL, {"placement": "item", "item": "nope"}).status_code == 404
    response = Client().get(URL, {"placement": "category", "category": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_naming_another_visitor_needs_an_api_key(world: ServingWorld) -> None:
    victim = Visitor.objects.create()
    view(victim, world.clusters[3][0])
    snoop = Visitor.objects.create()

    response = cookie_client(snoop).get(URL, {"placement": "home", "visitor": str(victim.key)})
    wrong_key = APIClient()
    wrong_key.credentials(HTTP_X_API_KEY="bogus.key")
    refused = wrong_key.get(URL, {"placement": "home", "visitor": str(victim.key)})

    assert response.status_code == 403 and "API key" in response.json()["detail"]
    assert refused.status_code == 403


def test_a_server_with_an_api_key_gets_a_named_visitors_picks(
    world: ServingWorld, keyed_client: APIClient
) -> None:
    visitor = Visitor.objects.create()
    for item in world.clusters[3][:3]:
        view(visitor, item)

    response = keyed_client.get(URL, {"placement": "email", "visitor": str(visitor.key), "k": "3"})
    unknown = keyed_client.get(
        URL, {"placement": "email", "visitor": "00000000-0000-4000-8000-000000000000"}
    )

    assert response.status_code == 200 and response.json()["section"] == Section.EMAIL
    assert cluster_of_ids(world, ids(response)) == {3}
    assert unknown.status_code == 200 and unknown.json()["title"] == "Popular right now"


def test_post_with_a_context_personalises_a_visitor_without_history(world: ServingWorld) -> None:
    cart = [item.external_id for item in world.clusters[2][:2]]

    response = APIClient().post(
        URL,
        {"placement": "home", "k": 3, "context": {"cart": cart, "recent": ["unknown-id"]}},
        format="json",
    )

    assert response.status_code == 200
    assert cluster_of_ids(world, ids(response)) == {2}
    assert not set(cart) & set(ids(response)) or response.json()["fallback"] == ""


@pytest.mark.parametrize(
    "body",
    [
        {"placement": "home", "context": {"cart": "sku-1"}},
        {"placement": "home", "context": {"recent": ["x"] * 51}},
        {"placement": "home", "context": "nope"},
    ],
)
def test_post_with_a_bad_context_is_a_400(world: ServingWorld, body: dict[str, Any]) -> None:
    response = APIClient().post(URL, body, format="json")

    assert response.status_code == 400 and "context" in response.json()


def test_two_visitors_never_see_each_others_recommendations(world: ServingWorld) -> None:
    alice, bob = Visitor.objects.create(), Visitor.objects.create()
    for item in world.clusters[0][:3]:
        view(alice, item)
    for item in world.clusters[3][:3]:
        view(bob, item)

    for_alice = cookie_client(alice).get(URL, {"placement": "home", "k": "3"})
    for_bob = cookie_client(bob).get(URL, {"placement": "home", "k": "3"})
    again = cookie_client(bob).get(URL, {"placement": "home", "k": "3"})

    assert cluster_of_ids(world, ids(for_alice)) == {0}
    assert cluster_of_ids(world, ids(for_bob)) == {3}
    assert again.headers["X-Recommendations-Cache"] == "hit" and ids(again) == ids(for_bob)


def test_a_repeat_is_answered_from_the_cache_with_one_query_and_a_new_event_refreshes_it(
    world: ServingWorld, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 60.0  # as served: no registry poll each time
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[2][0])
    client = cookie_client(visitor)
    first = client.get(URL, {"placement": "home", "k": "3"})

    with django_assert_num_queries(1):  # the cookie's visitor row, which carries its generation
        again = client.get(URL, {"placement": "home", "k": "3"})
    for item in world.clusters[1][:4]:
        view(visitor, item)
    after_views = client.get(URL, {"placement": "home", "k": "3"})

    assert first.headers["X-Recommendations-Cache"] == "miss"
    assert again.headers["X-Recommendations-Cache"] == "hit" and again.content == first.content
    assert after_views.headers["X-Recommendations-Cache"] == "miss"
    assert cluster_of_ids(world, ids(after_views)) == {1}


def test_the_cached_answer_is_per_host_since_its_urls_are_absolute(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[2][0])
    client = cookie_client(visitor)

    local = client.get(URL, {"placement": "home", "k": "2"})
    other = client.get(URL, {"placement": "home", "k": "2"}, HTTP_HOST="localhost")

    assert local.json()["items"][0]["url"].startswith("http://testserver/")
    assert other.json()["items"][0]["url"].startswith("http://localhost/")


def test_home_pages_of_two_visitors_differ_and_are_private(world: ServingWorld) -> None:
    alice, bob = Visitor.objects.create(), Visitor.objects.create()
    view(alice, world.clusters[0][0])
    view(bob, world.clusters[3][0])

    page_a = cookie_client(alice).get("/")
    page_b = cookie_client(bob).get("/")

    assert "Because you viewed Film 0-0" in page_a.content.decode()
    assert "Because you viewed Film 3-0" in page_b.content.decode()
    assert "Because you viewed Film 0-0" not in page_b.content.decode()
    assert "private" in page_a.headers["Cache-Control"]


def test_the_schema_documents_the_endpoint() -> None:
    schema = Client().get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/recommendations/"]
    assert {"get", "post"} <= set(operation)
    names = {parameter["name"] for parameter in operation["get"]["parameters"]}
    assert {"placement", "item", "category", "k", "visitor"} <= names
