"""Privacy API: export and erasure of one visitor's data, API key only."""

import uuid
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import InteractionFactory, VisitorFactory
from webapp.models import Interaction, Item, Visitor
from webapp.services.visitors import visitor_merge

pytestmark = pytest.mark.django_db


def export_url(key: Any) -> str:
    return reverse("api-visitor-export", kwargs={"visitor_key": str(key)})


def erase_url(key: Any) -> str:
    return reverse("api-visitor-erase", kwargs={"visitor_key": str(key)})


def test_export_contains_the_visitors_events(keyed_client: APIClient, visitor: Visitor) -> None:
    mine = InteractionFactory.create_batch(2, visitor=visitor)
    InteractionFactory()  # someone else's

    response = keyed_client.get(export_url(visitor.key))

    assert response.status_code == 200
    body = response.json()
    assert body["visitor"]["key"] == str(visitor.key)
    assert sorted(e["event_id"] for e in body["events"]) == sorted(str(e.event_id) for e in mine)
    assert {e["item"] for e in body["events"]} == {e.item.external_id for e in mine if e.item}


def test_export_includes_merged_visitors_and_follows_a_merged_key(
    keyed_client: APIClient,
) -> None:
    device, account = VisitorFactory.create(), VisitorFactory.create()
    InteractionFactory(visitor=device)
    InteractionFactory(visitor=account)
    visitor_merge(source=device, target=account)

    by_account = keyed_client.get(export_url(account.key)).json()
    by_device = keyed_client.get(export_url(device.key)).json()

    assert len(by_account["events"]) == 2
    assert by_device == by_account


def test_erase_deletes_visitor_events_and_merged_visitors(keyed_client: APIClient) -> None:
    device, account, other = (
        VisitorFactory.create(),
        VisitorFactory.create(),
        VisitorFactory.create(),
    )
    InteractionFactory.create_batch(2, visitor=device)
    InteractionFactory(visitor=account)
    InteractionFactory(visitor=other)
    visitor_merge(source=device, target=account)
    items_before = Item.objects.count()

    response = keyed_client.delete(erase_url(account.key))

    assert response.status_code == 200
    assert response.json() == {"visitors": 2, "events": 3, "exposures": 0}
    assert list(Visitor.objects.all()) == [other]
    assert list(Interaction.objects.values_list("visitor_id", flat=True)) == [other.pk]
    assert Item.objects.count() == items_before
    assert keyed_client.get(export_url(account.key)).status_code == 404


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_visitor_is_404(keyed_client: APIClient, method: str) -> None:
    key = uuid.uuid4()
    url = export_url(key) if method == "get" else erase_url(key)

    assert getattr(keyed_client, method)(url).status_code == 404


@pytest.mark.parametrize("bad_key", ["not-a-uuid", "1234", "0" * 33])
@pytest.mark.parametrize("method", ["get", "delete"])
def test_bad_visitor_key_is_400(keyed_client: APIClient, method: str, bad_key: str) -> None:
    url = export_url(bad_key) if method == "get" else erase_url(bad_key)

    response = getattr(keyed_client, method)(url)

    assert response.status_code == 400
    assert response.json() == {"visitor_key": ["Must be a UUID."]}


@pytest.mark.parametrize("method", ["get", "delete"])
@pytest.mark.parametrize("key_header", [None, "bogus.key"])
def test_privacy_endpoints_require_a_valid_key(
    visitor: Visitor, method: str, key_header: str | None
) -> None:
    InteractionFactory(visitor=visitor)
    client = APIClient()
    if key_header:
        client.credentials(HTTP_X_API_KEY=key_header)
    url = export_url(visitor.key) if method == "get" else erase_url(visitor.key)

    response = getattr(client, method)(url)

    assert response.status_code in (401, 403)
    assert Visitor.objects.filter(pk=visitor.pk).exists()
    assert Interaction.objects.filter(visitor=visitor).count() == 1
