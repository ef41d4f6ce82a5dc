"""Prices in our currency: conversion only through admin-entered exchange rates, and the
price series of an item's matched competitor products."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from scraper.models import ExchangeRate, PriceObservation
from scraper.models.prices import ACCEPTED_MATCH_STATUSES
from webapp.models import Item

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Converted:
    """An amount in the target currency, or `amount=None` with `rate_missing=True` when no
    exchange rate was entered for the pair: a visible state, never a silent comparison."""

    amount: Decimal | None
    currency: str
    rate_missing: bool = False


class RateTable:
    """The exchange rates of the admin, loaded once; looks up the rate valid at a time."""

    def __init__(self, rates: Iterable[ExchangeRate]) -> None:
        self._rates: dict[tuple[str, str], list[tuple[datetime, Decimal]]] = {}
        for rate in rates:
            self._rates.setdefault((rate.from_currency, rate.to_currency), []).append(
                (rate.valid_from, rate.rate)
            )
        for history in self._rates.values():
            history.sort(reverse=True)

    @classmethod
    def load(cls, currencies: Iterable[str] | None = None) -> "RateTable":
        """Every rate (or those between `currencies`) in one query."""
        rows = ExchangeRate.objects.all()
        if currencies is not None:
            wanted = sorted(set(currencies))
            rows = rows.filter(Q(from_currency__in=wanted) & Q(to_currency__in=wanted))
        return cls(rows)

    def rate(self, from_currency: str, to_currency: str, at: datetime) -> Decimal | None:
        """Units of `to_currency` per `from_currency` at `at`; an inverse rate serves too."""
        if from_currency == to_currency:
            return Decimal(1)
        direct = self._valid(from_currency, to_currency, at)
        if direct is not None:
            return direct
        inverse = self._valid(to_currency, from_currency, at)
        return None if inverse is None else Decimal(1) / inverse

    def _valid(self, from_currency: str, to_currency: str, at: datetime) -> Decimal | None:
        for valid_from, rate in self._rates.get((from_currency, to_currency), ()):
            if valid_from <= at:
                return rate
        return None

    def convert(
        self, amount: Decimal, from_currency: str, to_currency: str, at: datetime
    ) -> Converted:
        """`amount` in `to_currency` at `at`, rounded to cents, or the "no rate" state."""
        rate = self.rate(from_currency, to_currency, at)
        if rate is None:
            return Converted(None, to_currency, rate_missing=True)
        return Converted((amount * rate).quantize(CENT), to_currency)


def price_convert(
    *, amount: Decimal, from_currency: str, to_currency: str, at: datetime
) -> Converted:
    """Convert one amount through the ExchangeRate rows valid at `at`."""
    return RateTable.load([from_currency, to_currency]).convert(
        amount, from_currency, to_currency, at
    )


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    at: datetime
    price: Decimal
    currency: str
    converted: Converted
    availability: str


@dataclass(frozen=True, slots=True)
class CompetitorSeries:
    """The price history of one matched competitor product, oldest first."""

    product_id: int
    source_name: str
    title: str
    url: str
    points: tuple[SeriesPoint, ...]

    @property
    def rate_missing(self) -> bool:
        """Some points could not be converted to our currency."""
        return any(point.converted.rate_missing for point in self.points)


def price_series_for_item(*, item: Item) -> list[CompetitorSeries]:
    """Every accepted competitor match's history, converted to the item's currency."""
    observations = list(
        PriceObservation.objects.filter(
            product__matches__item=item, product__matches__status__in=ACCEPTED_MATCH_STATUSES
        )
        .select_related("product__source")
        .order_by("product_id", "observed_at")
    )
    rates = RateTable.load({o.currency for o in observations} | {item.currency})
    grouped: dict[int, list[PriceObservation]] = {}
    for observation in observations:
        grouped.setdefault(observation.product_id, []).append(observation)
    return [
        CompetitorSeries(
            product_id=product_id,
            source_name=rows[0].product.source.name,
            title=rows[0].product.title,
            url=rows[0].product.url,
            points=tuple(
                SeriesPoint(
                    o.observed_at,
                    o.price,
                    o.currency,
                    rates.convert(o.price, o.currency, item.currency, o.observed_at),
                    o.availability,
                )
                for o in rows
            ),
        )
        for product_id, rows in grouped.items()
    ]
