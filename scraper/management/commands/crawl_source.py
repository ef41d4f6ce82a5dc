"""Crawl one source in this process: `manage.py crawl_source <source id> [--run ID]`."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from scraper.models import ScrapeRun, Source
from scraper.models.sources import ScrapeRunStatus
from scraper.selectors import scrape_run_summary
from scraper.services.crawl import CRAWL_EXIT_LOCKED, scrape_run_fail
from scraper.spiders.product import ProductSpider


def scrapy_settings(overrides: list[str]) -> Settings:
    """The project's Scrapy settings plus `NAME=VALUE` overrides (as `scrapy -s`)."""
    settings = Settings()
    settings.setmodule("scraper.settings", priority="project")
    for override in overrides:
        name, separator, value = override.partition("=")
        if not separator or not name:
            raise CommandError(f"--set expects NAME=VALUE, got {override!r}")
        settings.set(name.strip(), value, priority="cmdline")
    return settings


class Command(BaseCommand):
    help = (
        "Crawl one scraper source now, in this process (the Twisted reactor runs once per "
        "process: Celery runs this command in a child process). Exits 3 when another crawl "
        "of the source holds its lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source_id", type=int)
        parser.add_argument("--run", type=int, help="a queued ScrapeRun of this source to fill")
        parser.add_argument("--trigger", default="command", help="recorded on a new run")
        parser.add_argument(
            "--set",
            "-s",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="override a Scrapy setting (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source_id: int = options["source_id"]
        run_id: int | None = options["run"]
        if not Source.objects.filter(pk=source_id).exists():
            raise CommandError(f"No scraper source with id {source_id}.")
        if (
            run_id is not None
            and not ScrapeRun.objects.filter(pk=run_id, source_id=source_id).exists()
        ):
            raise CommandError(f"No scrape run {run_id} of source {source_id}.")
        settings = scrapy_settings(options["set"])
        # Django's LOGGING already has a root handler; Scrapy's own would print every line twice.
        settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
        process = CrawlerProcess(settings)
        crawler = process.create_crawler(ProductSpider)
        process.crawl(crawler, source=source_id, run=run_id, trigger=options["trigger"])
        process.start()  # blocks until the crawl is over; the event loop is stopped after
        spider = crawler.spider
        recorded = getattr(spider, "run_id", None) if spider is not None else None
        if recorded is None:
            if run_id is not None:
                scrape_run_fail(run_id=run_id, reason="the crawl did not start (see the log)")
            raise CommandError("The crawl did not start; see the log above.")
        run = ScrapeRun.objects.get(pk=recorded)
        if run.status == ScrapeRunStatus.RUNNING:
            run = scrape_run_fail(run_id=run.pk, reason="the crawl ended without recording")
        self.stdout.write(json.dumps(scrape_run_summary(run)))
        if run.status == ScrapeRunStatus.SKIPPED:
            raise SystemExit(CRAWL_EXIT_LOCKED)
        if run.status != ScrapeRunStatus.FINISHED:
            raise SystemExit(1)
