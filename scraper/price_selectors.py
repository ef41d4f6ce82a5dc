"""Reads of competitor prices for the shop and the recommender (no writes here).

`item_price_relations` is the recommender's RECOMMENDER_PRICE_RELATIONS hook:
set it to "scraper.price_selectors.item_price_relations".
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ml.charts import LineChart, PointInput, SeriesInput, line_chart
from scraper.models import PriceObservation, ProductMatch
from scraper.models.prices import ACCEPTED_MATCH_STATUSES
from scraper.services.prices import Converted, RateTable, price_series_for_item
from webapp.models import Item

CHEAPER, PRICIER, SAME = "cheaper", "pricier", "same"
# Within half a percent of the cheapest competitor counts as the same price.
SAME_PRICE_TOLERANCE = Decimal("0.005")


@dataclass(frozen=True, slots=True)
class CompetitorPrice:
    """The latest price of one matched competitor product ("compare at")."""

    source_name: str
    title: str
    url: str
    price: Decimal
    currency: str
    availability: str
    observed_at: datetime
    converted: Converted  # in our item's currency, or the "no rate" state


def _latest(item_ids: Collection[int]) -> list[PriceObservation]:
    """The newest observation of every accepted match of the items, in one query."""
    return list(
        PriceObservation.objects.filter(
            product__matches__item_id__in=item_ids,
            product__matches__status__in=ACCEPTED_MATCH_STATUSES,
        )
        .select_related("product__source")
        .order_by("product_id", "-observed_at", "-id")
        .distinct("product_id")
    )


def item_competitor_prices(*, item: Item) -> list[CompetitorPrice]:
    """The latest competitor prices of an item, cheapest (in our currency) first."""
    rows = _latest([item.pk])
    rates = RateTable.load({row.currency for row in rows} | {item.currency})
    prices = [
        CompetitorPrice(
            source_name=row.product.source.name,
            title=row.product.title,
            url=_safe_url(row.product.url),
            price=row.price,
            currency=row.currency,
            availability=row.availability,
            observed_at=row.observed_at,
            converted=rates.convert(row.price, row.currency, item.currency, row.observed_at),
        )
        for row in rows
    ]
    return sorted(prices, key=lambda p: (p.converted.amount is None, p.converted.amount or 0))


@dataclass(frozen=True, slots=True)
class PriceComparison:
    """The item page's "Compare at" block: latest offers and their history as a chart."""

    offers: list[CompetitorPrice]
    chart: LineChart | None


def item_price_comparison(*, item: Item) -> PriceComparison:
    """Latest competitor prices and a chart of their history in the item's currency
    (points without an exchange rate are left off the chart; the table says "no rate")."""
    offers = item_competitor_prices(item=item)
    if not offers:
        return PriceComparison(offers, None)
    series = [
        SeriesInput(
            one.source_name,
            [
                PointInput(
                    p.at, float(p.converted.amount), f"{p.price} {p.currency}, {p.at:%Y-%m-%d}"
                )
                for p in one.points
                if p.converted.amount is not None
            ],
        )
        for one in price_series_for_item(item=item)
    ]
    if item.list_price is not None and any(s.points for s in series):
        times = [p.at for s in series for p in s.points]
        ours = f"{item.list_price} {item.currency} (ours)"
        series.append(
            SeriesInput(
                "Our price",
                [
                    PointInput(min(times), float(item.list_price), ours),
                    PointInput(max(times), float(item.list_price), ours),
                ],
            )
        )
    chart = line_chart(series, x_label="Date (UTC)", y_label=f"Price ({item.currency})")
    return PriceComparison(offers, chart)


def _safe_url(url: str) -> str:
    """Scraped URLs are linked only when http(s): never a `javascript:` link on our page."""
    return url if url.lower().startswith(("http://", "https://")) else ""


def item_price_relations(item_ids: Collection[int]) -> dict[int, str]:
    """Item pk → "cheaper" / "pricier" / "same" than the cheapest in-stock competitor, in
    our currency; items without a list price or a convertible competitor price are left
    out (unknown), never compared across currencies without a rate."""
    if not item_ids:
        return {}
    rows = _latest(item_ids)
    rows_of_items = Item.objects.filter(pk__in=item_ids, list_price__isnull=False).values_list(
        "pk", "list_price", "currency"
    )
    items: dict[int, tuple[Decimal, str]] = {
        pk: (price, currency) for pk, price, currency in rows_of_items if price is not None
    }
    matched = _item_of_products([row.product_id for row in rows])
    rates = RateTable.load({row.currency for row in rows} | {c for _, c in items.values()})
    cheapest: dict[int, Decimal] = {}
    for row in rows:
        if row.availability == "OutOfStock":
            continue
        for item_id in matched.get(row.product_id, ()):
            if item_id not in items:
                continue
            converted = rates.convert(row.price, row.currency, items[item_id][1], row.observed_at)
            if converted.amount is not None:
                cheapest[item_id] = min(cheapest.get(item_id, converted.amount), converted.amount)
    return {pk: _relation(items[pk][0], lowest) for pk, lowest in cheapest.items()}


def _item_of_products(product_ids: Collection[int]) -> dict[int, list[int]]:
    pairs = ProductMatch.objects.filter(
        product_id__in=product_ids, status__in=ACCEPTED_MATCH_STATUSES
    ).values_list("product_id", "item_id")
    found: dict[int, list[int]] = {}
    for product_id, item_id in pairs:
        found.setdefault(product_id, []).append(item_id)
    return found


def _relation(ours: Decimal, lowest: Decimal) -> str:
    if ours < lowest * (1 - SAME_PRICE_TOLERANCE):
        return CHEAPER
    if ours > lowest * (1 + SAME_PRICE_TOLERANCE):
        return PRICIER
    return SAME
