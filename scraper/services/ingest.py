"""Writes of scraped products: catalog items (`Item`s) and competitor products with their
price history. Called in batches by the storage pipeline, never per page."""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scraper.models import CompetitorProduct, PriceObservation
from webapp.models import Item

logger = logging.getLogger(__name__)

# Item columns a crawl of our own shop refreshes; category and attributes belong to the
# catalog feed/API and are only set when a crawl creates the item.
CATALOG_UPDATE_FIELDS = ["title", "description", "list_price", "currency", "image_url", "url"]
COMPETITOR_UPDATE_FIELDS = [
    "title",
    "brand",
    "sku",
    "gtin",
    "mpn",
    "image_url",
    "description",
    "last_seen_at",
]
# Items without a price on the page keep this currency (Item.currency is required).
UNPRICED_CURRENCY = "USD"


@dataclass(frozen=True)
class ScrapedProduct:
    """One validated product page (see scraper.pipelines.product_validate)."""

    url: str  # the canonical URL, inside the source's domains
    title: str
    price: Decimal | None = None
    currency: str = ""
    availability: str = ""
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    brand: str = ""
    image_url: str = ""
    description: str = ""


@dataclass
class IngestResult:
    """What one batch did."""

    created: list[int] = field(default_factory=list)  # primary keys of new rows
    updated: int = 0
    price_changes: int = 0


def catalog_external_id(*, source_id: int, product: ScrapedProduct) -> str:
    """The item's external id: the page's SKU (the shop's own id, so a crawl and the
    catalog API/feed describe the same item), else a stable id from source and URL."""
    if product.sku:
        return product.sku
    digest = hashlib.sha256(product.url.encode()).hexdigest()[:24]
    return f"src{source_id}-{digest}"


@transaction.atomic
def catalog_products_ingest(*, source_id: int, products: Sequence[ScrapedProduct]) -> IngestResult:
    """Insert or refresh our catalog's items from crawled pages (one upsert per batch);
    the new items' ids go to SCRAPER_NEW_ITEMS_TASK on commit."""
    now = timezone.now()
    by_id = {catalog_external_id(source_id=source_id, product=p): p for p in products}
    existing = set(
        Item.objects.filter(external_id__in=list(by_id)).values_list("external_id", flat=True)
    )
    rows = [_item(external_id, product, now) for external_id, product in by_id.items()]
    saved = Item.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["external_id"],
        update_fields=[*CATALOG_UPDATE_FIELDS, "updated_at"],
    )
    created = [row.pk for row in saved if row.external_id not in existing]
    if created:
        # robust: a broker outage is logged, never an error of the already-committed batch
        transaction.on_commit(lambda: _new_items_queue(created), robust=True)
    return IngestResult(created=created, updated=len(saved) - len(created))


def _item(external_id: str, product: ScrapedProduct, now: datetime) -> Item:
    attributes = {
        name: value
        for name, value in (
            ("brand", product.brand),
            ("gtin", product.gtin),
            ("mpn", product.mpn),
            ("availability", product.availability),
        )
        if value
    }
    return Item(
        external_id=external_id,
        title=product.title,
        description=product.description,
        attributes=attributes,
        list_price=product.price,
        currency=product.currency or UNPRICED_CURRENCY,
        image_url=product.image_url,
        url=product.url,
        updated_at=now,
    )


def _new_items_queue(item_ids: list[int]) -> None:
    task_name = settings.SCRAPER_NEW_ITEMS_TASK
    if not task_name:
        return  # switched off: the next training reads the new items
    current_app.send_task(task_name, kwargs={"item_ids": item_ids})


@transaction.atomic
def competitor_products_ingest(
    *, source_id: int, products: Sequence[ScrapedProduct], observed_at: datetime | None = None
) -> IngestResult:
    """Upsert a competitor's products (last seen now) and append a price observation for
    each whose price, currency or availability differs from its latest one.

    Check-then-append is safe because one source is crawled by one process at a time
    (the per-source advisory lock, scraper.services.crawl).
    """
    now = observed_at or timezone.now()
    by_url = {p.url: p for p in products}
    existing = set(
        CompetitorProduct.objects.filter(source_id=source_id, url__in=list(by_url)).values_list(
            "url", flat=True
        )
    )
    latest = _latest_observations(source_id=source_id, urls=list(by_url))
    saved = CompetitorProduct.objects.bulk_create(
        [_competitor_product(source_id, product, now) for product in by_url.values()],
        update_conflicts=True,
        unique_fields=["source", "url"],
        update_fields=COMPETITOR_UPDATE_FIELDS,
    )
    observations = [
        PriceObservation(
            product_id=row.pk,
            price=product.price,
            currency=product.currency,
            availability=product.availability,
            observed_at=now,
        )
        for row in saved
        if (product := by_url[row.url]).price is not None
        and latest.get(row.url) != (product.price, product.currency, product.availability)
    ]
    PriceObservation.objects.bulk_create(observations)
    created = [row.pk for row in saved if row.url not in existing]
    return IngestResult(
        created=created, updated=len(saved) - len(created), price_changes=len(observations)
    )


def _latest_observations(*, source_id: int, urls: list[str]) -> dict[str, tuple[Decimal, str, str]]:
    rows = (
        PriceObservation.objects.filter(product__source_id=source_id, product__url__in=urls)
        .order_by("product_id", "-observed_at", "-id")
        .distinct("product_id")
        .values_list("product__url", "price", "currency", "availability")
    )
    return {url: (price, currency, availability) for url, price, currency, availability in rows}


def _competitor_product(
    source_id: int, product: ScrapedProduct, now: datetime
) -> CompetitorProduct:
    return CompetitorProduct(
        source_id=source_id,
        url=product.url,
        title=product.title,
        brand=product.brand,
        sku=product.sku,
        gtin=product.gtin,
        mpn=product.mpn,
        image_url=product.image_url,
        description=product.description,
        last_seen_at=now,
    )
