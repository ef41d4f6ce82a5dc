"""Scrapy extension that ties a crawl to its ScrapeRun and holds the per-source lock."""

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, Self, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider

from scraper.services.crawl import (
    LOCKED_REASON,
    SourceLock,
    scrape_run_begin,
    scrape_run_finish,
    scrape_run_skip,
)

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_TRIGGER = "scrapy crawl"


def in_db_thread(function: Callable[P, R]) -> Callable[P, Any]:
    """`function` run by asgiref's single thread-sensitive worker thread: the asyncio
    reactor's loop runs in the main thread, where Django refuses synchronous ORM calls
    (SynchronousOnlyOperation), and one thread means one database connection per crawl."""
    return sync_to_async(function, thread_sensitive=True)


class ScrapeRunRecorder:
    """On open: take the source's lock (a locked source closes the spider at once, its run
    marked skipped) and mark the run running. On close: store Scrapy's stats as the run's
    counters, release the lock."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.lock: SourceLock | None = None
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        recorder = cls(crawler)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    async def spider_opened(self, spider: Spider) -> None:
        source_id: int | None = getattr(spider, "source_id", None)
        if source_id is None:
            return  # not a source crawl (e.g. the benchmark's plain spider)
        requested_run = getattr(spider, "run_id", None)
        trigger = getattr(spider, "trigger", DEFAULT_TRIGGER)
        lock = SourceLock(source_id)
        if not await in_db_thread(lock.acquire)():
            run = await in_db_thread(scrape_run_skip)(
                source_id=source_id, run_id=requested_run, trigger=trigger
            )
            spider.run_id = run.pk  # type: ignore[attr-defined]
            logger.warning("source %s: %s; run #%s skipped", source_id, LOCKED_REASON, run.pk)
            raise CloseSpider(LOCKED_REASON)
        self.lock = lock
        run = await in_db_thread(scrape_run_begin)(
            source_id=source_id, run_id=requested_run, trigger=trigger
        )
        self.run_id = spider.run_id = run.pk  # type: ignore[attr-defined]

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.lock is None or self.run_id is None:
            return  # never started (locked): the run is already recorded as skipped
        stats = self.crawler.stats.get_stats()  # type: ignore[union-attr]
        try:
            run = await in_db_thread(scrape_run_finish)(
                run_id=self.run_id, reason=reason, stats=stats
            )
            logger.info(
                "run #%s %s: %s pages, %s items saved, %s dropped, %s errors",
                run.pk,
                reason,
                run.pages,
                run.items_scraped,
                run.items_dropped,
                run.errors,
            )
        finally:
            await in_db_thread(self.lock.release)()
            await in_db_thread(connections.close_all)()
            self.lock = None
