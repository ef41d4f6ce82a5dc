"""Alert rules on matched competitor prices, exchange rates, and the alert e-mails."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from scraper.models import PriceAlert
from scraper.models.prices import AlertKind, MatchStatus
from scraper.services.alerts import price_alerts_email_pending, price_alerts_evaluate
from scraper.services.prices import price_convert, price_series_for_item
from tests.factories import ItemFactory
from tests.scraper.price_factories import (
    CompetitorSourceFactory,
    ExchangeRateFactory,
    PriceAlertRuleFactory,
    PriceObservationFactory,
    ProductMatchFactory,
)

pytestmark = pytest.mark.django_db


def matched(price: str, currency: str = "USD", *, ours: str = "100.00", **match: Any) -> Any:
    """An item priced `ours` USD matched to a competitor product last seen at `price`."""
    item = ItemFactory.create(list_price=Decimal(ours), currency="USD")
    m = ProductMatchFactory.create(item=item, **match)
    PriceObservationFactory.create(product=m.product, price=Decimal(price), currency=currency)
    return m


def test_undercut_above_the_threshold_alerts_once_and_emails_once(mailoutbox: list[Any]) -> None:
    rule = PriceAlertRuleFactory.create(
        threshold_percent=Decimal("10"), recipients="a@x.com, b@x.com"
    )
    cheap = matched("85.00")
    matched("95.00")  # 5% below: under the threshold

    first = price_alerts_evaluate()
    again = price_alerts_evaluate()

    assert (first.created, again.created) == (1, 0)
    alert = PriceAlert.objects.get()
    assert (alert.rule, alert.item, alert.product) == (rule, cheap.item, cheap.product)
    assert (alert.observed_price, alert.our_price) == (Decimal("85.00"), Decimal("100.00"))
    assert "15.0% below" in alert.message

    assert price_alerts_email_pending() == 1
    assert price_alerts_email_pending() == 0
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["a@x.com", "b@x.com"]
    assert "85.00 USD" in mailoutbox[0].body
    alert.refresh_from_db()
    assert alert.emailed_at is not None


def test_a_new_observation_alerts_again() -> None:
    PriceAlertRuleFactory.create(threshold_percent=Decimal("10"))
    m = matched("80.00")
    price_alerts_evaluate()

    PriceObservationFactory.create(
        product=m.product, price=Decimal("70.00"), observed_at=timezone.now()
    )

    assert price_alerts_evaluate().created == 1
    assert PriceAlert.objects.count() == 2


def test_rules_watch_their_source_only_and_ignore_unaccepted_matches() -> None:
    watched = CompetitorSourceFactory.create(name="Watched")
    PriceAlertRuleFactory.create(source=watched, threshold_percent=Decimal("1"))
    matched("50.00")  # another source
    matched("50.00", status=MatchStatus.PENDING, product__source=watched)
    matched("50.00", status=MatchStatus.REJECTED, product__source=watched)
    hit = matched("50.00", status=MatchStatus.APPROVED, product__source=watched)

    assert price_alerts_evaluate().created == 1
    assert PriceAlert.objects.get().product == hit.product


def test_other_currencies_compare_only_through_an_exchange_rate() -> None:
    PriceAlertRuleFactory.create(threshold_percent=Decimal("10"))
    m = matched("70.00", "EUR")

    skipped = price_alerts_evaluate()
    assert (skipped.created, skipped.no_rate) == (0, 1)  # never compared silently

    ExchangeRateFactory.create(from_currency="EUR", to_currency="USD", rate=Decimal("1.10"))
    fired = price_alerts_evaluate()
    assert (fired.created, fired.no_rate) == (1, 0)
    alert = PriceAlert.objects.get()
    assert (alert.product, alert.observed_currency) == (m.product, "EUR")
    assert "77.00 USD" in alert.message


def test_out_of_stock_rule() -> None:
    PriceAlertRuleFactory.create(kind=AlertKind.OUT_OF_STOCK, threshold_percent=None)
    gone = matched("120.00")
    PriceObservationFactory.create(
        product=gone.product, availability="OutOfStock", observed_at=timezone.now()
    )
    matched("120.00")

    assert price_alerts_evaluate().created == 1
    assert "out of stock" in PriceAlert.objects.get().message


def test_inactive_rules_and_rules_without_recipients_send_nothing(mailoutbox: list[Any]) -> None:
    PriceAlertRuleFactory.create(is_active=False, threshold_percent=Decimal("1"))
    PriceAlertRuleFactory.create(recipients="", threshold_percent=Decimal("1"))
    matched("10.00")

    assert price_alerts_evaluate().created == 1
    assert price_alerts_email_pending() == 0
    assert mailoutbox == []


def test_conversion_uses_the_rate_valid_at_the_time_and_inverse_rates() -> None:
    now = timezone.now()
    ExchangeRateFactory.create(rate=Decimal("1.10"), valid_from=now - timedelta(days=30))
    ExchangeRateFactory.create(rate=Decimal("1.20"), valid_from=now - timedelta(days=1))

    old = price_convert(
        amount=Decimal("10"), from_currency="EUR", to_currency="USD", at=now - timedelta(days=5)
    )
    new = price_convert(amount=Decimal("10"), from_currency="EUR", to_currency="USD", at=now)
    inverse = price_convert(amount=Decimal("12"), from_currency="USD", to_currency="EUR", at=now)
    before = price_convert(
        amount=Decimal("10"), from_currency="EUR", to_currency="USD", at=now - timedelta(days=60)
    )
    missing = price_convert(amount=Decimal("10"), from_currency="GBP", to_currency="USD", at=now)

    assert (old.amount, new.amount, inverse.amount) == (
        Decimal("11.00"),
        Decimal("12.00"),
        Decimal("10.00"),
    )
    assert before.amount is None and before.rate_missing
    assert missing.amount is None and missing.rate_missing


def test_price_series_of_an_item_shows_missing_rates() -> None:
    m = matched("70.00", "EUR")
    PriceObservationFactory.create(
        product=m.product, price=Decimal("65.00"), currency="EUR", observed_at=timezone.now()
    )

    [series] = price_series_for_item(item=m.item)

    assert [p.price for p in series.points] == [Decimal("70.00"), Decimal("65.00")]
    assert series.rate_missing
