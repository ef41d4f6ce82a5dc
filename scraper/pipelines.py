"""Item pipelines: validate (itemadapter + the schema below), deduplicate, then store in
batches through the ingest services.

Scrapy runs on the asyncio reactor, whose event loop owns the main thread; Django refuses
synchronous ORM calls there (SynchronousOnlyOperation). So storage is an async pipeline
that buffers items and hands each batch to asgiref's single thread-sensitive worker
thread (`in_db_thread`): the loop keeps crawling while a batch is written, and every
write of the crawl goes through one thread and one database connection.
"""

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from scraper.extensions import in_db_thread
from scraper.extraction import gtin_check_digit_is_valid
from scraper.models.sources import SourceKind, domain_in
from scraper.selectors import CrawlConfig
from scraper.services.ingest import (
    ScrapedProduct,
    catalog_external_id,
    catalog_products_ingest,
    competitor_products_ingest,
)

logger = logging.getLogger(__name__)

DROPPED_PREFIX = "scraper/dropped/"
MAX_PRICE = Decimal("9999999999.99")  # PriceObservation/Item: 12 digits, 2 decimals
PRICE_QUANTUM = Decimal("0.01")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AVAILABILITY = frozenset({"InStock", "OutOfStock"})


@dataclass(frozen=True)
class TextRule:
    """A text field: its longest allowed value, and whether a longer one is cut or
    dropped (identifiers are never cut: a cut SKU names another product)."""

    max_length: int
    cut: bool = True


# The schema of a product item's text fields (lengths are the model columns').
TEXT_SCHEMA: dict[str, TextRule] = {
    "title": TextRule(500),
    "brand": TextRule(200),
    "sku": TextRule(128, cut=False),
    "mpn": TextRule(128, cut=False),
    "description": TextRule(10_000),
}
URL_MAX_LENGTH = 1000


class InvalidProduct(ValueError):
    """The item cannot be stored; the message is the counted drop reason."""


def product_validate(item: Any, config: CrawlConfig) -> ScrapedProduct:
    """A ScrapedProduct from an extracted item, or InvalidProduct naming what is wrong."""
    adapter = ItemAdapter(item)
    text = {name: _text(adapter.get(name), rule) for name, rule in TEXT_SCHEMA.items()}
    if not text["title"]:
        raise InvalidProduct("missing title")
    price = _price(adapter.get("price"))
    currency = _currency(adapter.get("currency"), config.default_currency)
    if price is not None and not currency:
        raise InvalidProduct("missing currency")
    availability = adapter.get("availability")
    return ScrapedProduct(
        url=_own_url(adapter.get("canonical_url"), adapter.get("url"), config),
        title=text["title"],
        price=price,
        currency=currency if price is not None else "",
        availability=availability if availability in _AVAILABILITY else "",
        sku=text["sku"],
        gtin=_gtin(adapter.get("gtin")),
        mpn=text["mpn"],
        brand=text["brand"],
        image_url=_http_url(adapter.get("image")),
        description=text["description"],
    )


def _text(value: Any, rule: TextRule) -> str:
    cleaned = " ".join(str(value).split()) if value is not None else ""
    if len(cleaned) <= rule.max_length:
        return cleaned
    return cleaned[: rule.max_length] if rule.cut else ""


def _price(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        price = Decimal(str(value)).quantize(PRICE_QUANTUM)
    except (InvalidOperation, ValueError) as error:
        raise InvalidProduct("invalid price") from error
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise InvalidProduct("invalid price")
    return price


def _currency(value: Any, default: str) -> str:
    code = str(value or "").strip().upper()
    if code and not _CURRENCY.match(code):
        raise InvalidProduct("invalid currency")
    return code or default


def _gtin(value: Any) -> str:
    digits = str(value or "").strip()
    valid = digits.isdigit() and len(digits) in (8, 12, 13, 14)
    return digits if valid and gtin_check_digit_is_valid(digits) else ""


def _http_url(value: Any) -> str:
    url = str(value or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > URL_MAX_LENGTH:
        return ""
    return url


def _own_url(canonical: Any, page_url: Any, config: CrawlConfig) -> str:
    """The canonical URL when it stays inside the source's domains (a page must not
    be able to file itself under another shop's URL), else the page's own URL."""
    for candidate in (canonical, page_url):
        url = _http_url(candidate)
        if url and domain_in(urlsplit(url).hostname or "", list(config.allowed_domains)):
            return urlunsplit(urlsplit(url)._replace(fragment=""))
    raise InvalidProduct("URL outside the allowed domains or too long")


class _SourcePipeline:
    """Base: the crawler, the spider's source configuration, drop counting."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @property
    def config(self) -> CrawlConfig | None:
        return getattr(self.crawler.spider, "config", None)

    def drop(self, reason: str, count: int = 1) -> None:
        self.crawler.stats.inc_value(DROPPED_PREFIX + reason, count)  # type: ignore[union-attr]


class ValidationPipeline(_SourcePipeline):
    """Extracted item -> ScrapedProduct; invalid items are dropped and counted by reason."""

    def process_item(self, item: Any) -> Any:
        if self.config is None:
            return item
        try:
            return product_validate(item, self.config)
        except InvalidProduct as error:
            self.drop(str(error))
            raise DropItem(f"{error}: {ItemAdapter(item).get('url')}") from error


class DeduplicationPipeline(_SourcePipeline):
    """Drops a product already seen in this crawl (same catalog id or same URL)."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.seen: set[str] = set()

    def process_item(self, item: Any) -> Any:
        if self.config is None or not isinstance(item, ScrapedProduct):
            return item
        if self.config.kind == SourceKind.CATALOG:
            key = catalog_external_id(source_id=self.config.source_id, product=item)
        else:
            key = item.url
        if key in self.seen:
            self.drop("duplicate")
            raise DropItem(f"duplicate: {key}")
        self.seen.add(key)
        return item


class StoragePipeline(_SourcePipeline):
    """Buffers valid products and writes them SCRAPER_INGEST_BATCH_SIZE at a time."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.batch_size = max(1, crawler.settings.getint("SCRAPER_INGEST_BATCH_SIZE", 200))
        self.buffer: list[ScrapedProduct] = []

    async def process_item(self, item: Any) -> Any:
        if self.config is None or not isinstance(item, ScrapedProduct):
            return item
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            await self.flush()
        return item

    async def close_spider(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write what is buffered; a batch the database refuses is dropped and counted,
        the crawl goes on."""
        config = self.config
        batch, self.buffer = self.buffer, []  # taken before awaiting: no batch written twice
        if not batch or config is None:
            return
        is_catalog = config.kind == SourceKind.CATALOG
        ingest = catalog_products_ingest if is_catalog else competitor_products_ingest
        try:
            result = await in_db_thread(ingest)(source_id=config.source_id, products=batch)
        except Exception:
            logger.exception("storing %d products of source %s failed", len(batch), config.name)
            self.drop("database error", len(batch))
            return
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value("scraper/items/saved", len(batch))
        stats.inc_value("scraper/items/created", len(result.created))
        stats.inc_value("scraper/items/updated", result.updated)
        stats.inc_value("scraper/price_changes", result.price_changes)
