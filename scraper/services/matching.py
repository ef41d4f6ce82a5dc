"""Matching competitor products to our items: exact identifiers first, then the weakly
supervised matcher; confident matches are accepted, the rest wait for review."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from scraper.matching.blocking import candidate_pairs
from scraper.matching.features import ProductRecord, normalize_code, normalize_gtin
from scraper.matching.matcher import Pair, WeakMatcher, best_per_product
from scraper.models import CompetitorProduct, PriceObservation, ProductMatch
from scraper.models.prices import (
    LIVE_MATCH_STATUSES,
    REVIEWED_MATCH_STATUSES,
    MatchMethod,
    MatchStatus,
)
from scraper.models.sources import SourceKind
from scraper.services.prices import RateTable
from webapp.models import Item

logger = logging.getLogger(__name__)

# Defaults of the SCRAPER_MATCH_* settings: accept at or above, review at or above.
ACCEPT_THRESHOLD = 0.9
REVIEW_THRESHOLD = 0.3
# The matcher trains on the candidates of at most this many products (newest first).
TRAINING_PRODUCTS = 5000
EXACT_METHODS = (
    ("gtin", MatchMethod.EXACT_GTIN, normalize_gtin),
    ("mpn", MatchMethod.EXACT_MPN, normalize_code),
    ("sku", MatchMethod.EXACT_SKU, normalize_code),
)


@dataclass(frozen=True, slots=True)
class MatchRunResult:
    """What one matching run did."""

    exact: int = 0
    accepted: int = 0
    pending: int = 0
    unmatched: int = 0


def item_record(item: Item, rates: RateTable, currency: str) -> ProductRecord:
    """Our item as matching sees it (price in `currency`); identifiers and brand come from
    its attributes."""
    attributes: Mapping[str, Any] = item.attributes if isinstance(item.attributes, dict) else {}
    price = None
    if item.list_price is not None:
        price = rates.convert(item.list_price, item.currency, currency, timezone.now()).amount
    return ProductRecord(
        key=item.pk,
        title=item.title,
        brand=str(attributes.get("brand") or ""),
        price=float(price) if price is not None else None,
        gtin=str(attributes.get("gtin") or ""),
        sku=str(attributes.get("sku") or ""),
        mpn=str(attributes.get("mpn") or ""),
    )


def product_record(product: CompetitorProduct, price: float | None = None) -> ProductRecord:
    """A competitor product as matching sees it."""
    return ProductRecord(
        product.pk, product.title, product.brand, price, product.gtin, product.sku, product.mpn
    )


def product_matches_run(*, source_id: int | None = None) -> MatchRunResult:
    """Match the (source's) competitor products that have no live match yet."""
    rates, currency = RateTable.load(), _catalog_currency()
    unmatched = list(_unmatched_products(source_id, rates, currency))
    if not unmatched:
        return MatchRunResult()
    active = Item.objects.filter(is_active=True).only(
        "pk", "title", "attributes", "list_price", "currency"
    )
    items = [item_record(item, rates, currency) for item in active]
    exact = _exact_matches(unmatched, items)
    rest = [p for p in unmatched if p.key not in exact]
    scored = _model_matches(rest, unmatched, items) if rest and items else {}
    accept = float(settings.SCRAPER_MATCH_ACCEPT_THRESHOLD)
    review = float(settings.SCRAPER_MATCH_REVIEW_THRESHOLD)
    rows = [
        ProductMatch(
            product_id=key,
            item_id=item,
            method=method,
            probability=1.0,
            status=MatchStatus.AUTO_ACCEPTED,
        )
        for key, (item, method) in exact.items()
    ]
    for key, (item, probability) in scored.items():
        if probability >= review:
            status = MatchStatus.AUTO_ACCEPTED if probability >= accept else MatchStatus.PENDING
            rows.append(
                ProductMatch(
                    product_id=key,
                    item_id=item,
                    method=MatchMethod.MODEL,
                    probability=probability,
                    status=status,
                )
            )
    # Another run may have matched a product meanwhile: the constraints keep its row.
    ProductMatch.objects.bulk_create(rows, ignore_conflicts=True)
    accepted = sum(
        1 for r in rows if r.method == MatchMethod.MODEL and r.status == MatchStatus.AUTO_ACCEPTED
    )
    pending = sum(1 for r in rows if r.status == MatchStatus.PENDING)
    result = MatchRunResult(len(exact), accepted, pending, len(unmatched) - len(rows))
    logger.info("matching source %s: %s", source_id, result)
    return result


def _unmatched_products(
    source_id: int | None, rates: RateTable, currency: str
) -> Iterable[ProductRecord]:
    live = ProductMatch.objects.filter(status__in=LIVE_MATCH_STATUSES)
    products = CompetitorProduct.objects.filter(source__kind=SourceKind.COMPETITOR).exclude(
        pk__in=live.values("product_id")
    )
    if source_id is not None:
        products = products.filter(source_id=source_id)
    prices = _latest_prices(products, rates, currency)
    return (product_record(p, prices.get(p.pk)) for p in products.order_by("pk"))


def _latest_prices(
    products: QuerySet[CompetitorProduct], rates: RateTable, currency: str
) -> dict[int, float]:
    """Each product's latest price in `currency`; left out when no rate converts it, so
    the price features see "missing" rather than a comparison across currencies."""
    latest = (
        PriceObservation.objects.filter(product__in=products)
        .order_by("product_id", "-observed_at", "-id")
        .distinct("product_id")
    )
    prices = {}
    for row in latest:
        converted = rates.convert(row.price, row.currency, currency, row.observed_at)
        if converted.amount is not None:
            prices[row.product_id] = float(converted.amount)
    return prices


def _catalog_currency() -> str:
    """The currency most of our active items are priced in (prices are compared in it)."""
    top = (
        Item.objects.filter(is_active=True)
        .values("currency")
        .annotate(n=Count("pk"))
        .order_by("-n", "currency")
        .first()
    )
    return str(top["currency"]) if top else "USD"


def _exact_matches(
    products: list[ProductRecord], items: list[ProductRecord]
) -> dict[int, tuple[int, str]]:
    """product → (item, method) on the first identifier both carry and only one item has."""
    found: dict[int, tuple[int, str]] = {}
    for field, method, normalize in EXACT_METHODS:
        index: dict[str, list[int]] = {}
        for item in items:
            if code := normalize(getattr(item, field)):
                index.setdefault(code, []).append(item.key)
        for product in products:
            code = normalize(getattr(product, field))
            owners = index.get(code, []) if code else []
            if product.key not in found and len(owners) == 1:
                found[product.key] = (owners[0], method)
    return found


def _model_matches(
    products: list[ProductRecord], training: list[ProductRecord], items: list[ProductRecord]
) -> dict[int, tuple[int, float]]:
    """product → (best item, probability) from a matcher trained on the candidates of
    `training` (this run's products, exact matches included: their identifiers are what
    teaches the model) and on the reviewers' gold labels."""
    by_key = {item.key: item for item in items}
    rejected = set(
        ProductMatch.objects.filter(status=MatchStatus.REJECTED).values_list(
            "product_id", "item_id"
        )
    )
    pairs = [p for p in candidate_pairs(products, items) if (p[0].key, p[1].key) not in rejected]
    if not pairs:
        return {}
    examples, gold = _training_pairs(candidate_pairs(training[:TRAINING_PRODUCTS], items), by_key)
    matcher = WeakMatcher().fit(examples, gold)
    best = best_per_product(pairs, matcher.predict_proba(pairs))
    return {score.product_key: (score.item_key, score.probability) for score in best}


def _training_pairs(
    pairs: list[Pair], items: Mapping[int, ProductRecord]
) -> tuple[list[Pair], dict[tuple[int, int], int]]:
    """This run's candidates plus every reviewed pair (gold: approved 1, rejected 0)."""
    reviewed = ProductMatch.objects.filter(status__in=REVIEWED_MATCH_STATUSES).select_related(
        "product"
    )[:TRAINING_PRODUCTS]
    gold: dict[tuple[int, int], int] = {}
    extra: list[Pair] = []
    for match in reviewed:
        item = items.get(match.item_id)
        if item is None:
            continue
        gold[(match.product_id, match.item_id)] = int(match.status == MatchStatus.APPROVED)
        extra.append((product_record(match.product), item))
    return [*pairs, *extra], gold


def product_match_approve(*, match: ProductMatch, user: AbstractBaseUser | None) -> ProductMatch:
    """A reviewer confirms the match; it becomes a gold positive label."""
    return _review(match=match, user=user, status=MatchStatus.APPROVED)


def product_match_reject(*, match: ProductMatch, user: AbstractBaseUser | None) -> ProductMatch:
    """A reviewer rejects the match; the pair becomes a gold negative and is never proposed
    again, and the product may be matched to another item on the next run."""
    return _review(match=match, user=user, status=MatchStatus.REJECTED)


def _review(*, match: ProductMatch, user: AbstractBaseUser | None, status: str) -> ProductMatch:
    with transaction.atomic():
        locked = ProductMatch.objects.select_for_update().get(pk=match.pk)
        if status == MatchStatus.APPROVED and locked.status == MatchStatus.REJECTED:
            # Approving a rejected pair must not break "one live match per product".
            ProductMatch.objects.filter(
                Q(product_id=locked.product_id) & Q(status__in=LIVE_MATCH_STATUSES)
            ).exclude(pk=locked.pk).update(
                status=MatchStatus.REJECTED, reviewed_by=user, reviewed_at=timezone.now()
            )
        locked.status = status
        locked.reviewed_by = user  # type: ignore[assignment]
        locked.reviewed_at = timezone.now()
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    return locked
