"""The generic product spider: one Source's start URLs and sitemaps, its listing and
pagination links, and its product pages extracted by `extract_product`."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self, TypeVar

import scrapy
from django.db import connections
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.settings import Settings
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.gz import gunzip
from scrapy.utils.sitemap import Sitemap
from twisted.python.failure import Failure

from scraper.extraction import SelectorConfigError
from scraper.items import ProductItem
from scraper.models.sources import ExtractionMode
from scraper.selectors import CrawlConfig, source_crawl_config
from scraper.spiders.extraction_pool import ExtractionPool

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Stats keys the run recorder turns into ScrapeRun counters.
PAGES_OK = "scraper/pages/ok"
PAGES_FAILED = "scraper/pages/failed"
ERRORS_PREFIX = "scraper/errors/"
SKIPPED_PREFIX = "scraper/skipped/"
# The spider closes itself this long before the process's hard time limit.
TIME_LIMIT_MARGIN_SECONDS = 60
_TIMEOUT_NAMES = ("TimeoutError", "DownloadTimeoutError", "TCPTimedOutError")
_CONNECTION_NAMES = (
    "ConnectionRefusedError",
    "DownloadConnectionRefusedError",
    "ConnectError",
    "ConnectionLost",
    "ConnectionDone",
    "ResponseFailed",
    "ResponseNeverReceived",
    "DownloadFailedError",
    "ResponseDataLossError",
    "DNSLookupError",
    "CannotResolveHostError",
)


def outside_event_loop(read: Callable[[], T]) -> T:
    """Run a synchronous ORM read where Django allows it: here when no event loop runs,
    else in a short-lived thread (the asyncio reactor may already be running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return read()

    def in_thread() -> T:
        try:
            return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(in_thread).result()


def failure_reason(failure: Failure) -> str:
    """A short, countable name for why a request failed."""
    error = failure.value
    if isinstance(error, HttpError):
        return f"HTTP {error.response.status}"
    if isinstance(error, IgnoreRequest):
        message = str(error)
        if "robots.txt" in message:
            return "robots.txt"
        if "redirect" in message:
            return "redirect loop"
        return f"ignored: {message or 'request'}"
    name = type(error).__name__
    if name in _TIMEOUT_NAMES:
        return "timeout"
    if name in _CONNECTION_NAMES:
        return "connection failed"
    if name == "DownloadCancelledError":
        return "too large"
    return name


class ProductSpider(scrapy.Spider):
    """`scrapy crawl product -a source=<id> [-a run=<ScrapeRun id>]`."""

    name = "product"
    config: CrawlConfig
    allowed_domains: list[str]
    _products: LinkExtractor
    _listings: LinkExtractor
    _product_url: re.Pattern[str] | None
    _pool: ExtractionPool

    def __init__(self, source: str | int, run: str | int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            self.source_id = int(source)
            self.run_id: int | None = int(run) if run not in (None, "") else None
        except (TypeError, ValueError) as error:
            raise ValueError(f"source and run must be ids, got {source!r} and {run!r}") from error

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.config = outside_event_loop(lambda: source_crawl_config(source_id=spider.source_id))
        spider.allowed_domains = list(spider.config.allowed_domains)
        spider._apply_politeness(crawler.settings)
        spider._products = _link_extractor(
            spider.config.product_url_pattern, spider.config.product_link_css
        )
        spider._listings = _link_extractor(
            spider.config.follow_url_pattern, spider.config.follow_link_css
        )
        spider._pool = ExtractionPool(crawler.settings.getint("SCRAPER_EXTRACTION_PROCESSES", 0))
        spider._product_url = (
            re.compile(spider.config.product_url_pattern)
            if spider.config.product_url_pattern
            else None
        )
        return spider

    def _apply_politeness(self, settings: Settings) -> None:
        """The source's politeness fields, at spider priority (`-s` on the command line wins)."""
        from django.conf import settings as django_settings

        hard_limit = django_settings.SCRAPER_CRAWL_TIME_LIMIT - TIME_LIMIT_MARGIN_SECONDS
        values = {
            "CONCURRENT_REQUESTS_PER_DOMAIN": self.config.concurrent_requests_per_domain,
            "DOWNLOAD_DELAY": self.config.download_delay,
            "DOWNLOAD_TIMEOUT": self.config.download_timeout,
            "CLOSESPIDER_PAGECOUNT": self.config.max_pages,
            "CLOSESPIDER_TIMEOUT": max(1, min(self.config.max_seconds, hard_limit)),
        }
        for name, value in values.items():
            settings.set(name, value, priority="spider")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.config.sitemap_urls:
            yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error)
        for url in self.config.start_urls:
            yield scrapy.Request(url, callback=self.parse_listing, errback=self.on_error)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        """A sitemap index leads to sitemaps, a sitemap to product pages."""
        body = response.body
        if response.url.endswith(".gz") or body[:2] == b"\x1f\x8b":
            try:
                body = gunzip(body, max_size=self.crawler.settings.getint("DOWNLOAD_MAXSIZE"))
            except OSError:
                self._count_error("bad sitemap", response.url)
                return
        try:
            sitemap = Sitemap(body)
        except Exception:  # lxml raises on bodies that are not XML at all
            self._count_error("bad sitemap", response.url)
            return
        self._count(PAGES_OK)
        for entry in sitemap:
            url = entry.get("loc", "")
            if sitemap.type == "sitemapindex":
                yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error)
            elif self._product_url is None or self._product_url.search(url):
                yield scrapy.Request(url, callback=self.parse_product, errback=self.on_error)

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        """Product links become product requests, listing/pagination links listing requests."""
        if not self._is_html(response):
            return
        assert isinstance(response, TextResponse)
        self._count(PAGES_OK)
        products = {link.url for link in self._products.extract_links(response)}
        for url in sorted(products):
            yield scrapy.Request(url, callback=self.parse_product, errback=self.on_error)
        for link in self._listings.extract_links(response):
            if link.url not in products:
                yield scrapy.Request(link.url, callback=self.parse_listing, errback=self.on_error)

    async def parse_product(self, response: Response) -> AsyncIterator[ProductItem]:
        """One product page; a page the extractor cannot read is counted, not fatal."""
        if not self._is_html(response):
            return
        assert isinstance(response, TextResponse)
        try:
            fields = await self._pool.extract(
                response.text,
                response.url,
                self.config.selectors,
                only_selectors=self.config.extraction_mode == ExtractionMode.SELECTORS,
            )
        except SelectorConfigError:
            raise  # the source's configuration, not the page: worth a spider error
        except Exception:
            logger.exception("extraction failed on %s", response.url)
            self._count_error("extraction failed", response.url)
            return
        self._count(PAGES_OK)
        yield ProductItem(url=response.url, **fields)

    def closed(self, reason: str) -> None:
        self._pool.close()

    def on_error(self, failure: Failure) -> None:
        """Every request given up on (after retries) lands here and is counted by reason."""
        reason = failure_reason(failure)
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if reason == "robots.txt":
            self._count(SKIPPED_PREFIX + reason)
            return
        self._count(PAGES_FAILED)
        self._count_error(reason, url)

    def _is_html(self, response: Response) -> bool:
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if isinstance(response, TextResponse) and ("html" in content_type or not content_type):
            return True
        self._count(PAGES_FAILED)
        self._count_error("not HTML", response.url)
        return False

    def _count(self, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(key)

    def _count_error(self, reason: str, url: str) -> None:
        logger.warning("page %s: %s", url, reason)
        self._count(ERRORS_PREFIX + reason)


def _link_extractor(pattern: str, css: str) -> LinkExtractor:
    if not pattern and not css:
        return _NoLinks()
    return LinkExtractor(
        allow=(pattern,) if pattern else (),
        restrict_css=(css,) if css else (),
        unique=True,  # off-domain links are dropped by Scrapy's OffsiteMiddleware
    )


class _NoLinks(LinkExtractor):
    """A rule that is not configured follows nothing."""

    def extract_links(self, response: TextResponse) -> list[Any]:
        return []
