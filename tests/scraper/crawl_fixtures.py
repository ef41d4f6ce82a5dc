"""Helpers of the crawl tests: sources pointing at the loopback sites, and real crawls in a
child process (`manage.py crawl_source`) against the test database."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from scrapy.crawler import Crawler

from scraper.models import Source
from scraper.models.sources import SourceKind
from tests.scraper.sites.books import BOOKS_SELECTORS, BooksSite
from tests.scraper.sites.fixture_shop import FixtureShop
from tests.workers import child_env, database_url_of_tests  # noqa: F401 - re-exported

ROOT = Path(__file__).resolve().parents[2]
CRAWL_TIMEOUT_SECONDS = 120
# Fast but real: short backoff, no AutoThrottle (the loopback server is never overloaded).
FAST_SETTINGS = {
    "RETRY_BACKOFF_BASE": "0.05",
    "AUTOTHROTTLE_ENABLED": "False",
    "LOG_LEVEL": "INFO",
}


def crawl(source: Source, **settings: Any) -> subprocess.CompletedProcess[str]:
    """Run one real crawl of `source` in a child process; returns its exit status and log."""
    command = [sys.executable, str(ROOT / "manage.py"), "crawl_source", str(source.pk)]
    for name, value in {**FAST_SETTINGS, **settings}.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        command += ["-s", f"{name}={text}"]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=CRAWL_TIMEOUT_SECONDS,
        check=False,
    )


def fixture_shop_source(shop: FixtureShop, **fields: Any) -> Source:
    """The fixture shop as a competitor source: listings and pagination by URL, products
    as every link of a listing's product list, a 1 s timeout so the slow page times out."""
    values: dict[str, Any] = {
        "name": "Fixture shop",
        "kind": SourceKind.COMPETITOR,
        "allowed_domains": ["127.0.0.1"],
        "start_urls": shop.listing_urls(),
        "follow_url_pattern": r"/category/",
        "product_link_css": "ul.listing",
        "download_timeout": 1,
        "download_delay": 0.0,
        "concurrent_requests_per_domain": 8,
        **fields,
    }
    source = Source(**values)
    source.full_clean()
    source.save()
    return source


def books_source(site: BooksSite, **fields: Any) -> Source:
    """The books site as a source configured through selectors only."""
    values: dict[str, Any] = {
        "name": "Books to Scrape",
        "kind": SourceKind.CATALOG,
        "allowed_domains": ["127.0.0.1"],
        "start_urls": site.listing_urls(),
        "follow_url_pattern": r"/catalogue/page-\d+\.html$",
        "product_url_pattern": r"/catalogue/[^/]+/index\.html$",
        "selectors": dict(BOOKS_SELECTORS),
        "download_delay": 0.0,
        "concurrent_requests_per_domain": 8,
        **fields,
    }
    source = Source(**values)
    source.full_clean()
    source.save()
    return source


class NaiveOrmPipeline:
    """What NOT to do: a synchronous ORM call straight from process_item, i.e. inside the
    asyncio reactor's running event loop. Counts what the call raised in the crawl stats."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "NaiveOrmPipeline":
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        from scraper.models import CompetitorProduct

        try:
            CompetitorProduct.objects.count()
            outcome = "ok"
        except Exception as error:
            outcome = type(error).__name__
        self.crawler.stats.inc_value(f"naive_orm/{outcome}")  # type: ignore[union-attr]
        return item


async def orm_count_in_db_thread() -> int:
    """The sound way, for comparison: the same read through sync_to_async."""
    from scraper.models import CompetitorProduct

    return await sync_to_async(CompetitorProduct.objects.count, thread_sensitive=True)()
