"""Catalog API: public reads with filters, keyed upserts (one and bulk), deactivation."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import CategoryFactory, ItemFactory
from webapp.models import Category, Item
from webapp.services.catalog import category_get_or_create_path, items_upsert

pytestmark = pytest.mark.django_db

LIST_URL = reverse("api-item-list")
BULK_URL = reverse("api-item-bulk-upsert")
BULK_DEACTIVATE_URL = reverse("api-item-bulk-deactivate")


def detail_url(external_id: str) -> str:
    return reverse("api-item-detail", kwargs={"external_id": external_id})


def ids_of(response: Any) -> list[str]:
    return [row["external_id"] for row in response.json()["results"]]


def item_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "The Grand Budapest Hotel",
        "description": "A concierge and his lobby boy.",
        "category": "Movies > Comedy",
        "attributes": {"director": "Wes Anderson", "year": 2014},
        "list_price": "12.99",
        "currency": "usd",
        "image_url": "https://img.example.com/gbh.jpg",
        "url": "https://shop.example.com/gbh",
        "is_active": True,
    }
    return {**body, **overrides}


# --- reads ----------------------------------------------------------------------------


def test_list_shows_active_items_newest_first_with_pagination(api_client: APIClient) -> None:
    items = ItemFactory.create_batch(30)
    ItemFactory(is_active=False)

    first = api_client.get(LIST_URL)
    second = api_client.get(LIST_URL, {"page": 2})

    assert first.status_code == 200
    assert first.json()["count"] == 30
    assert len(first.json()["results"]) == 24
    assert first.json()["next"] is not None
    newest_first = [i.external_id for i in sorted(items, key=lambda i: i.pk, reverse=True)]
    assert ids_of(first) + ids_of(second) == newest_first


def test_list_row_shape(api_client: APIClient) -> None:
    item = ItemFactory.create(list_price=Decimal("12.50"), attributes={"year": 2014})

    row = api_client.get(LIST_URL).json()["results"][0]

    assert row["external_id"] == item.external_id
    assert item.category is not None
    assert row["category"] == {"slug": item.category.slug, "name": item.category.name}
    assert row["list_price"] == "12.50"
    assert row["currency"] == "USD"
    assert row["attributes"] == {"year": 2014}
    assert "search_vector" not in row


def test_inactive_items_are_hidden_by_default_and_listed_on_request(
    api_client: APIClient,
) -> None:
    ItemFactory(external_id="on")
    ItemFactory(external_id="off", is_active=False)

    assert ids_of(api_client.get(LIST_URL)) == ["on"]
    assert ids_of(api_client.get(LIST_URL, {"is_active": "false"})) == ["off"]
    assert ids_of(api_client.get(LIST_URL, {"is_active": "true"})) == ["on"]


def test_category_filter_includes_descendants(api_client: APIClient) -> None:
    movies = CategoryFactory(name="Movies", slug="movies")
    comedy = CategoryFactory(name="Comedy", slug="movies-comedy", parent=movies)
    slapstick = CategoryFactory(name="Slapstick", slug="slapstick", parent=comedy)
    ItemFactory(external_id="m", category=movies)
    ItemFactory(external_id="c", category=comedy)
    ItemFactory(external_id="s", category=slapstick)
    ItemFactory(external_id="other")

    assert sorted(ids_of(api_client.get(LIST_URL, {"category": "movies"}))) == ["c", "m", "s"]
    assert sorted(ids_of(api_client.get(LIST_URL, {"category": "movies-comedy"}))) == ["c", "s"]


def test_unknown_category_filter_is_a_400(api_client: APIClient) -> None:
    response = api_client.get(LIST_URL, {"category": "nope"})

    assert response.status_code == 400
    assert "category" in response.json()


def test_price_filters(api_client: APIClient) -> None:
    for external_id, price in [("cheap", "2.00"), ("mid", "10.00"), ("dear", "99.99")]:
        ItemFactory(external_id=external_id, list_price=Decimal(price))

    response = api_client.get(LIST_URL, {"min_price": "5", "max_price": "10"})

    assert ids_of(response) == ["mid"]


def test_full_text_query_matches_title_and_description_best_first(
    api_client: APIClient,
) -> None:
    ItemFactory(external_id="desc", title="Boxed set", description="Dragons and wizards.")
    ItemFactory(external_id="title", title="Dragons of autumn", description="A novel.")
    ItemFactory(external_id="none", title="Cookbook", description="Soups.")

    response = api_client.get(LIST_URL, {"q": "dragon"})

    assert ids_of(response) == ["title", "desc"]


def test_updated_since_filter(api_client: APIClient) -> None:
    old = ItemFactory.create(external_id="old")
    ItemFactory(external_id="new")
    Item.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert ids_of(api_client.get(LIST_URL, {"updated_since": since})) == ["new"]


@pytest.mark.parametrize(
    "params",
    [
        {"min_price": "cheap"},
        {"max_price": "1e"},
        {"updated_since": "yesterday"},
        {"is_active": "maybe"},
        {"ordering": "secret"},
    ],
)
def test_bad_filter_values_are_400(api_client: APIClient, params: dict[str, str]) -> None:
    assert api_client.get(LIST_URL, params).status_code == 400


def test_list_query_count_does_not_grow_with_items(
    api_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    ItemFactory.create_batch(24)
    category = CategoryFactory(slug="filtered")
    ItemFactory.create_batch(3, category=category)

    # count + page; the category filter adds its lookup and the tree.
    with django_assert_max_num_queries(2):
        assert api_client.get(LIST_URL).status_code == 200
    with django_assert_max_num_queries(4):
        assert api_client.get(LIST_URL, {"category": "filtered", "q": "item"}).status_code == 200


def test_detail_shows_an_item_even_when_inactive(api_client: APIClient) -> None:
    ItemFactory(external_id="gone", is_active=False)

    response = api_client.get(detail_url("gone"))

    assert response.status_code == 200
    assert response.json()["is_active"] is False


def test_detail_of_unknown_item_is_404(api_client: APIClient) -> None:
    assert api_client.get(detail_url("nope")).status_code == 404


def test_categories_list_is_the_tree_with_parent_slugs(api_client: APIClient) -> None:
    movies = CategoryFactory(name="Movies", slug="movies")
    CategoryFactory(name="Comedy", slug="movies-comedy", parent=movies)

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get(reverse("api-category-list"))

    assert response.status_code == 200
    assert len(queries) == 1
    rows = {row["slug"]: row for row in response.json()}
    assert rows["movies"]["parent"] is None
    assert rows["movies-comedy"] == {
        "id": rows["movies-comedy"]["id"],
        "name": "Comedy",
        "slug": "movies-comedy",
        "parent": "movies",
    }


def test_category_detail_and_404(api_client: APIClient) -> None:
    movies = CategoryFactory(name="Movies", slug="movies")
    CategoryFactory(name="Comedy", slug="movies-comedy", parent=movies)

    response = api_client.get(reverse("api-category-detail", kwargs={"slug": "movies"}))
    missing = api_client.get(reverse("api-category-detail", kwargs={"slug": "nope"}))

    assert response.status_code == 200
    assert response.json()["children"] == ["movies-comedy"]
    assert response.json()["parent"] is None
    assert missing.status_code == 404


# --- single upsert --------------------------------------------------------------------


def test_put_creates_then_updates_the_same_row(keyed_client: APIClient) -> None:
    created = keyed_client.put(detail_url("gbh-1"), item_body(), format="json")
    first = Item.objects.get(external_id="gbh-1")

    updated = keyed_client.put(
        detail_url("gbh-1"),
        item_body(title="The Grand Budapest Hotel (4K)", list_price="15.00", currency="EUR"),
        format="json",
    )

    assert created.status_code == 201
    assert updated.status_code == 200
    assert Item.objects.filter(external_id="gbh-1").count() == 1
    item = Item.objects.get(external_id="gbh-1")
    assert item.pk == first.pk
    assert item.title == "The Grand Budapest Hotel (4K)"
    assert item.list_price == Decimal("15.00")
    assert item.currency == "EUR"
    assert item.created_at == first.created_at
    assert item.updated_at > first.updated_at
    assert updated.json()["title"] == "The Grand Budapest Hotel (4K)"


def test_put_creates_the_category_path_and_normalizes_fields(keyed_client: APIClient) -> None:
    response = keyed_client.put(detail_url("gbh-1"), item_body(), format="json")

    item = Item.objects.select_related("category__parent").get(external_id="gbh-1")
    assert response.json()["category"] == {"slug": "movies-comedy", "name": "Comedy"}
    assert item.category is not None and item.category.parent is not None
    assert (item.category.parent.slug, item.category.slug) == ("movies", "movies-comedy")
    assert item.currency == "USD"
    assert item.attributes == {"director": "Wes Anderson", "year": 2014}


def test_put_accepts_an_existing_category_slug(keyed_client: APIClient) -> None:
    category = CategoryFactory(name="Sci-fi", slug="sci-fi")

    keyed_client.put(detail_url("x"), item_body(category="sci-fi"), format="json")

    assert Item.objects.get(external_id="x").category == category
    assert Category.objects.count() == 1


def test_put_replaces_omitted_fields_with_defaults(keyed_client: APIClient) -> None:
    keyed_client.put(detail_url("x"), item_body(), format="json")

    keyed_client.put(detail_url("x"), {"title": "Just a title"}, format="json")

    item = Item.objects.get(external_id="x")
    assert (item.description, item.category, item.list_price, item.attributes) == (
        "",
        None,
        None,
        {},
    )


def test_put_rejects_an_external_id_that_differs_from_the_url(keyed_client: APIClient) -> None:
    response = keyed_client.put(detail_url("x"), item_body(external_id="y"), format="json")

    assert response.status_code == 400
    assert "external_id" in response.json()
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": None}, "title"),
        ({"list_price": "-1.00"}, "list_price"),
        ({"list_price": "9.999"}, "list_price"),
        ({"list_price": "free"}, "list_price"),
        ({"list_price": "NaN"}, "list_price"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"image_url": "ftp://example.com/a.jpg"}, "image_url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"attributes": ["a", "b"]}, "attributes"),
        ({"attributes": "colour=red"}, "attributes"),
        ({"attributes": {"note": "nul\u0000byte"}}, "attributes"),
        ({"description": "nul\u0000byte"}, "description"),
        ({"is_active": "perhaps"}, "is_active"),
        ({"category": "Movies > " + "x" * 201}, "category"),
    ],
)
def test_put_rejects_bad_fields(
    keyed_client: APIClient, overrides: dict[str, Any], field: str
) -> None:
    response = keyed_client.put(detail_url("x"), item_body(**overrides), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Item.objects.exists()


@pytest.mark.parametrize("external_id", ["has space", "x" * 129])
def test_put_rejects_bad_external_ids(keyed_client: APIClient, external_id: str) -> None:
    response = keyed_client.put(detail_url(external_id), item_body(), format="json")

    assert response.status_code == 400
    assert "external_id" in response.json()


def test_put_accepts_trailing_zero_prices_and_slashes_in_ids(keyed_client: APIClient) -> None:
    response = keyed_client.put(
        detail_url("shop/films/1"), item_body(list_price="9.990"), format="json"
    )

    assert response.status_code == 201
    assert Item.objects.get(external_id="shop/films/1").list_price == Decimal("9.99")
    assert keyed_client.get(detail_url("shop/films/1")).status_code == 200


def test_put_accepts_only_json(keyed_client: APIClient) -> None:
    response = keyed_client.put(detail_url("x"), "title=Form", content_type="text/plain")

    assert response.status_code == 415


# --- bulk upsert ----------------------------------------------------------------------


def test_bulk_upsert_stores_valid_items_and_rejects_invalid_ones(keyed_client: APIClient) -> None:
    ItemFactory(external_id="old", title="Old title")
    items = [
        item_body(external_id="new-1"),
        item_body(external_id="bad-1", list_price="-5", currency="usd!"),
        item_body(external_id="old", title="New title"),
        "not an object",
        item_body(external_id="new-1", title="Again"),
        item_body(external_id="new-2", category=None),
    ]

    response = keyed_client.post(BULK_URL, {"items": items}, format="json")

    assert response.status_code == 207
    body = response.json()
    assert (body["created"], body["updated"], body["rejected"]) == (2, 1, 3)
    statuses = [(r["index"], r["external_id"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "new-1", "created"),
        (1, "bad-1", "rejected"),
        (2, "old", "updated"),
        (3, None, "rejected"),
        (4, "new-1", "rejected"),
        (5, "new-2", "created"),
    ]
    assert set(body["results"][1]["errors"]) == {"list_price", "currency"}
    assert body["results"][4]["errors"] == {"external_id": ["Duplicate of index 0."]}
    assert body["results"][0]["errors"] == {}
    assert sorted(Item.objects.values_list("external_id", flat=True)) == [
        "new-1",
        "new-2",
        "old",
    ]
    assert Item.objects.get(external_id="old").title == "New title"
    assert Item.objects.get(external_id="new-1").title == "The Grand Budapest Hotel"


def test_bulk_upsert_all_valid_is_200(keyed_client: APIClient) -> None:
    items = [item_body(external_id=f"sku-{n}", category="Books") for n in range(50)]

    response = keyed_client.post(BULK_URL, {"items": items}, format="json")

    assert response.status_code == 200
    assert response.json()["created"] == 50
    assert Item.objects.filter(category__slug="books").count() == 50


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": "nope"},
        {"items": [item_body(external_id=f"s{n}") for n in range(1001)]},
        ["not", "an", "object"],
    ],
)
def test_bulk_upsert_rejects_bad_envelopes(keyed_client: APIClient, body: Any) -> None:
    response = keyed_client.post(BULK_URL, body, format="json")

    assert response.status_code == 400
    assert not Item.objects.exists()


# --- deactivation ---------------------------------------------------------------------


def test_deactivate_one_hides_it_from_the_list(
    keyed_client: APIClient, api_client: APIClient
) -> None:
    ItemFactory(external_id="x")

    response = keyed_client.post(reverse("api-item-deactivate", kwargs={"external_id": "x"}))
    again = keyed_client.post(reverse("api-item-deactivate", kwargs={"external_id": "x"}))

    assert response.status_code == again.status_code == 200
    assert response.json()["is_active"] is False
    assert Item.objects.get(external_id="x").is_active is False
    assert ids_of(api_client.get(LIST_URL)) == []


def test_deactivate_unknown_item_is_404(keyed_client: APIClient) -> None:
    url = reverse("api-item-deactivate", kwargs={"external_id": "nope"})
    assert keyed_client.post(url).status_code == 404


def test_bulk_deactivate_reports_counts_and_unknown_ids(keyed_client: APIClient) -> None:
    ItemFactory(external_id="a")
    ItemFactory(external_id="b")
    ItemFactory(external_id="c", is_active=False)
    ItemFactory(external_id="keep")

    response = keyed_client.post(
        BULK_DEACTIVATE_URL, {"external_ids": ["a", "b", "c", "zzz"]}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"deactivated": 2, "not_found": ["zzz"]}
    assert list(Item.objects.filter(is_active=True).values_list("external_id", flat=True)) == [
        "keep"
    ]
    assert Item.objects.count() == 4


@pytest.mark.parametrize("body", [{}, {"external_ids": []}, {"external_ids": "a"}])
def test_bulk_deactivate_rejects_bad_bodies(keyed_client: APIClient, body: Any) -> None:
    assert keyed_client.post(BULK_DEACTIVATE_URL, body, format="json").status_code == 400


# --- API key --------------------------------------------------------------------------


WRITES = [
    ("put", lambda: detail_url("x"), item_body()),
    ("post", lambda: BULK_URL, {"items": [item_body(external_id="x")]}),
    ("post", lambda: reverse("api-item-deactivate", kwargs={"external_id": "x"}), None),
    ("post", lambda: BULK_DEACTIVATE_URL, {"external_ids": ["x"]}),
]


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_writes_without_a_key_are_refused(
    api_client: APIClient, method: str, url: Any, body: Any
) -> None:
    ItemFactory(external_id="x", title="Untouched")

    response = getattr(api_client, method)(url(), body, format="json")

    assert response.status_code in (401, 403)
    assert Item.objects.get(external_id="x").title == "Untouched"
    assert Item.objects.get(external_id="x").is_active is True


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_writes_with_an_invalid_key_are_403(method: str, url: Any, body: Any) -> None:
    ItemFactory(external_id="x", title="Untouched")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="bogus.key")

    response = getattr(client, method)(url(), body, format="json")

    assert response.status_code == 403
    assert Item.objects.get(external_id="x").is_active is True


def test_reads_need_no_key(api_client: APIClient, item: Item) -> None:
    assert api_client.get(LIST_URL).status_code == 200
    assert api_client.get(detail_url(item.external_id)).status_code == 200


# --- services -------------------------------------------------------------------------


def test_category_path_reuses_existing_nodes_by_name() -> None:
    movies = CategoryFactory(name="Movies", slug="films")

    comedy = category_get_or_create_path(path="movies >  Comedy ")
    again = category_get_or_create_path(path="Movies>Comedy")

    assert comedy == again
    assert comedy.parent == movies
    assert comedy.slug == "films-comedy"
    assert Category.objects.count() == 2


def test_category_path_avoids_a_slug_taken_by_an_unrelated_category() -> None:
    squatter = CategoryFactory(name="Movies Comedy", slug="movies-comedy")

    comedy = category_get_or_create_path(path="Movies > Comedy")

    assert comedy != squatter
    assert comedy.slug == "movies-comedy-2"
    assert comedy.parent is not None and comedy.parent.slug == "movies"
    assert category_get_or_create_path(path="Movies > Comedy") == comedy


def test_items_upsert_batches_and_tells_created_from_updated() -> None:
    from webapp.services.catalog import UPSERT_BATCH_SIZE, ItemData

    ItemFactory(external_id="sku-3")
    items = [ItemData(external_id=f"sku-{n}", title=f"T{n}") for n in range(UPSERT_BATCH_SIZE + 5)]

    result = items_upsert(items=items)

    assert result.updated == ["sku-3"]
    assert len(result.created) == UPSERT_BATCH_SIZE + 4
    assert Item.objects.count() == UPSERT_BATCH_SIZE + 5
