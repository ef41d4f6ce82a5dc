"""The shop item page's "Compare at" block, and the recommender's price-relation hook."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recommender.candidates import Candidate, Section
from recommender.merchandising import merchandising_apply
from recommender.models import MerchandisingRule, RuleAction
from scraper.models.prices import MatchStatus
from scraper.price_selectors import item_competitor_prices, item_price_relations
from tests.factories import ItemFactory
from tests.scraper.price_factories import (
    CompetitorSourceFactory,
    ExchangeRateFactory,
    PriceObservationFactory,
    ProductMatchFactory,
)

pytestmark = pytest.mark.django_db
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def offer(
    item: Any,
    price: str,
    currency: str = "USD",
    *,
    source: str = "Rival",
    availability: str = "InStock",
    **match: Any,
) -> Any:
    """A competitor product of `source` matched to `item`, last seen at `price`."""
    found = ProductMatchFactory.create(
        item=item, product__source=CompetitorSourceFactory.create(name=source), **match
    )
    return PriceObservationFactory.create(
        product=found.product, price=Decimal(price), currency=currency, availability=availability
    )


def test_item_page_compares_at_competitor_prices_escaped(client: Client) -> None:
    item = ItemFactory.create(list_price=Decimal("20.00"), currency="USD")
    observation = offer(item, "18.50", source=XSS)
    observation.product.title = XSS
    observation.product.url = "javascript:alert(1)"
    observation.product.save()
    offer(item, "17.00", "EUR", source="Euro shop")
    offer(item, "1.00", source="Pending shop", status=MatchStatus.PENDING)

    response = client.get(reverse("item", args=[item.external_id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Compare at" in html
    assert "18.50 USD" in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert XSS not in html and "<img src=x" not in html
    assert "javascript:" not in html
    assert "17.00 EUR" in html and "no EUR→USD rate" in html
    assert "Pending shop" not in html
    assert "<svg" in html and "Our price" in html


def test_item_page_converts_with_a_rate_and_hides_the_block_without_prices(client: Client) -> None:
    item = ItemFactory.create(list_price=Decimal("20.00"))
    offer(item, "17.00", "EUR")
    ExchangeRateFactory.create(from_currency="EUR", to_currency="USD", rate=Decimal("1.10"))
    bare = ItemFactory.create()

    html = client.get(reverse("item", args=[item.external_id])).content.decode()
    bare_html = client.get(reverse("item", args=[bare.external_id])).content.decode()

    assert "≈ 18.70 USD" in html
    assert "17.00 EUR, " in html  # the chart point's tooltip: the price as seen
    assert "Compare at" not in bare_html


def test_competitor_prices_are_read_in_two_queries_latest_first() -> None:
    item = ItemFactory.create()
    first = offer(item, "30.00")
    PriceObservationFactory.create(
        product=first.product, price=Decimal("25.00"), observed_at=timezone.now()
    )
    for n in range(5):
        offer(item, f"{40 + n}.00", source=f"Shop {n}")

    with CaptureQueriesContext(connection) as queries:
        prices = item_competitor_prices(item=item)

    assert len(queries) == 2
    assert [p.price for p in prices][:2] == [Decimal("25.00"), Decimal("40.00")]


def test_price_relations_compare_with_the_cheapest_in_stock_competitor() -> None:
    cheaper = ItemFactory.create(list_price=Decimal("9.00"))
    pricier = ItemFactory.create(list_price=Decimal("12.00"))
    same = ItemFactory.create(list_price=Decimal("10.00"))
    unknown_rate = ItemFactory.create(list_price=Decimal("5.00"))
    no_price = ItemFactory.create(list_price=None)
    for found in (cheaper, pricier, same, no_price):
        offer(found, "10.00")
        offer(found, "1.00", availability="OutOfStock", source="Gone")
    offer(cheaper, "11.00", source="Dearer")
    offer(unknown_rate, "1.00", "GBP")

    relations = item_price_relations(
        [i.pk for i in (cheaper, pricier, same, unknown_rate, no_price)]
    )

    assert relations == {cheaper.pk: "cheaper", pricier.pk: "pricier", same.pk: "same"}


def test_merchandising_boosts_items_cheaper_than_competitors(settings: Any) -> None:
    items = ItemFactory.create_batch(4, list_price=Decimal("10.00"))
    offer(items[3], "12.00")  # we are cheaper on the last-ranked item only
    offer(items[1], "8.00")
    MerchandisingRule.objects.create(
        name="Cheaper first", action=RuleAction.BOOST, price_relation="cheaper", strength=10
    )
    candidates = [Candidate(item.pk, 1.0 - i / 10, "ease", 1) for i, item in enumerate(items)]

    def ranked() -> list[int]:
        chosen = merchandising_apply(section=Section.TOP_PICKS.value, candidates=candidates, k=4)
        return [c.item_id for c in chosen]

    settings.RECOMMENDER_PRICE_RELATIONS = None
    assert ranked() == [i.pk for i in items]  # no price facts configured: nothing moves

    settings.RECOMMENDER_PRICE_RELATIONS = "scraper.price_selectors.item_price_relations"
    assert ranked() == [items[3].pk, items[0].pk, items[1].pk, items[2].pk]
