"""Price alert rules evaluated on the latest observations of matched competitor products;
alerts are created once per (rule, item, observation) and e-mailed once."""

import logging
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from scraper.models import PriceAlert, PriceAlertRule, PriceObservation, ProductMatch
from scraper.models.prices import ACCEPTED_MATCH_STATUSES, AlertKind
from scraper.models.sources import SourceKind
from scraper.services.prices import RateTable

logger = logging.getLogger(__name__)
OUT_OF_STOCK = "OutOfStock"


@dataclass(frozen=True, slots=True)
class AlertRunResult:
    """Alerts created, and comparisons skipped because no exchange rate was entered."""

    created: int = 0
    no_rate: int = 0


def price_alerts_evaluate(*, source_id: int | None = None) -> AlertRunResult:
    """Evaluate every active rule on the latest observation of each accepted match."""
    rules = list(PriceAlertRule.objects.filter(is_active=True))
    if not rules:
        return AlertRunResult()
    matches = ProductMatch.objects.filter(
        status__in=ACCEPTED_MATCH_STATUSES, product__source__kind=SourceKind.COMPETITOR
    ).select_related("item", "product__source")
    if source_id is not None:
        matches = matches.filter(product__source_id=source_id)
    latest = _latest_observations([m.product_id for m in matches])
    rates = RateTable.load()
    alerts: list[PriceAlert] = []
    no_rate = 0
    for match in matches:
        observation = latest.get(match.product_id)
        if observation is None:
            continue
        for rule in rules:
            if rule.source_id not in (None, match.product.source_id):
                continue
            alert, missing = _fire(rule, match, observation, rates)
            no_rate += missing
            if alert is not None:
                alerts.append(alert)
    existing = set(
        PriceAlert.objects.filter(
            observation_id__in=[a.observation_id for a in alerts]
        ).values_list("rule_id", "item_id", "observation_id")
    )
    new = [a for a in alerts if (a.rule_id, a.item_id, a.observation_id) not in existing]
    # A concurrent run may insert the same alert between the read and here: the unique
    # constraint keeps one row, so the count is at most an overestimate, never a duplicate.
    PriceAlert.objects.bulk_create(new, ignore_conflicts=True)
    if no_rate:
        logger.warning("price alerts: %s comparisons skipped, no exchange rate entered", no_rate)
    return AlertRunResult(created=len(new), no_rate=no_rate)


def _latest_observations(product_ids: Collection[int]) -> dict[int, PriceObservation]:
    rows = (
        PriceObservation.objects.filter(product_id__in=product_ids)
        .order_by("product_id", "-observed_at", "-id")
        .distinct("product_id")
    )
    return {row.product_id: row for row in rows}


def _fire(
    rule: PriceAlertRule, match: ProductMatch, observation: PriceObservation, rates: RateTable
) -> tuple[PriceAlert | None, int]:
    """The alert this rule raises for this observation (or None), and 1 if a rate was missing."""
    item, product = match.item, match.product
    if rule.kind == AlertKind.OUT_OF_STOCK:
        if observation.availability != OUT_OF_STOCK:
            return None, 0
        message = f"{product.source.name} is out of stock of {item.title} ({product.url})"
        return _alert(rule, match, observation, message), 0
    if item.list_price is None or rule.threshold_percent is None:
        return None, 0
    converted = rates.convert(
        observation.price, observation.currency, item.currency, observation.observed_at
    )
    if converted.amount is None:
        return None, 1
    limit = item.list_price * (1 - rule.threshold_percent / Decimal(100))
    if converted.amount >= limit:
        return None, 0
    below = (1 - converted.amount / item.list_price) * 100 if item.list_price else Decimal(0)
    message = (
        f"{product.source.name} sells {item.title} for {observation.price} {observation.currency}"
        f" ({converted.amount} {item.currency}),"
        f" {below:.1f}% below our {item.list_price} {item.currency}"
    )
    return _alert(rule, match, observation, message), 0


def _alert(
    rule: PriceAlertRule, match: ProductMatch, observation: PriceObservation, message: str
) -> PriceAlert:
    return PriceAlert(
        rule=rule,
        item=match.item,
        product=match.product,
        observation=observation,
        message=message,
        observed_price=observation.price,
        observed_currency=observation.currency,
        our_price=match.item.list_price,
        our_currency=match.item.currency,
    )


def price_alerts_email_pending() -> int:
    """E-mail every alert not sent yet, one message per rule; returns the alerts sent.

    Rows are locked (skip locked) so two workers never send the same alert twice."""
    sent = 0
    with transaction.atomic():
        pending = list(
            PriceAlert.objects.filter(emailed_at__isnull=True)
            .filter(~Q(rule__recipients=""))
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("rule")
            .order_by("rule_id", "id")
        )
        by_rule: dict[int, list[PriceAlert]] = {}
        for alert in pending:
            by_rule.setdefault(alert.rule_id, []).append(alert)
        for alerts in by_rule.values():
            rule = alerts[0].rule
            send_mail(
                subject=f"[price alert] {rule.name}: {len(alerts)} new",
                message="\n".join(a.message for a in alerts),
                from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None),
                recipient_list=rule.recipient_list,
            )
            PriceAlert.objects.filter(pk__in=[a.pk for a in alerts]).update(
                emailed_at=timezone.now()
            )
            sent += len(alerts)
    return sent
