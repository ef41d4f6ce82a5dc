"""factory_boy factories for competitor products, prices, matches and alert rules."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from scraper.models import (
    CompetitorProduct,
    ExchangeRate,
    PriceAlertRule,
    PriceObservation,
    ProductMatch,
    Source,
)
from scraper.models.prices import AlertKind, MatchMethod, MatchStatus
from scraper.models.sources import SourceKind
from tests.factories import ItemFactory


class CompetitorSourceFactory(factory.django.DjangoModelFactory[Source]):
    class Meta:
        model = Source
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Competitor {n}")
    kind = SourceKind.COMPETITOR


class CompetitorProductFactory(factory.django.DjangoModelFactory[CompetitorProduct]):
    class Meta:
        model = CompetitorProduct

    source = factory.SubFactory(CompetitorSourceFactory)
    url = factory.Sequence(lambda n: f"https://shop.example/p/{n}")
    title = factory.Sequence(lambda n: f"Competitor thing {n}")
    last_seen_at = factory.LazyFunction(timezone.now)


class PriceObservationFactory(factory.django.DjangoModelFactory[PriceObservation]):
    class Meta:
        model = PriceObservation

    product = factory.SubFactory(CompetitorProductFactory)
    price = Decimal("9.00")
    currency = "USD"
    availability = "InStock"
    observed_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))


class ProductMatchFactory(factory.django.DjangoModelFactory[ProductMatch]):
    class Meta:
        model = ProductMatch

    product = factory.SubFactory(CompetitorProductFactory)
    item = factory.SubFactory(ItemFactory)
    method = MatchMethod.EXACT_GTIN
    probability = 1.0
    status = MatchStatus.AUTO_ACCEPTED


class ExchangeRateFactory(factory.django.DjangoModelFactory[ExchangeRate]):
    class Meta:
        model = ExchangeRate

    from_currency = "EUR"
    to_currency = "USD"
    rate = Decimal("1.10")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))


class PriceAlertRuleFactory(factory.django.DjangoModelFactory[PriceAlertRule]):
    class Meta:
        model = PriceAlertRule

    name = factory.Sequence(lambda n: f"Alert rule {n}")
    kind = AlertKind.UNDERCUT
    threshold_percent = Decimal("5")
    recipients = "pricing@example.com"
